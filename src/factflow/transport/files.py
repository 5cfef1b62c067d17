"""Event files: one envelope per line, in `.jsonl` or gzip-compressed `.jsonl.gz` files, or one
per row in `.parquet` files (layout: `factflow.transport.parquet`).

`read_lines` yields the raw lines in batches for publishing, bootstrapping or tests; it never
parses JSON and never drops a line that has content, so a broken line reaches the runtime and
becomes a dead letter with its reason. `write_lines` writes such a file so that a reader never
sees half of it under its final name. `read_events` and `write_events` do the same for any
event file, choosing the format by the file's suffix.

>>> write_lines(Path("events.jsonl.gz"), [b'{"id": "e-1", ...}', b'{"id": "e-2", ...}'])
2
>>> for batch in read_lines(Path("events.jsonl.gz"), batch_size=1000):
...     transport.publish(...)
"""

from __future__ import annotations

import contextlib
import gzip
import os
import secrets
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from factflow.errors import DecodeError

__all__ = ["is_parquet", "read_events", "read_lines", "write_events", "write_lines"]

_CHUNK = 1024 * 1024  # bytes per read: splitting a large buffer beats iterating over lines
_GZIP = zlib.MAX_WBITS | 16  # zlib's window bits for the gzip container
_OUT = 4 * _CHUNK  # the most decompressed bytes taken from zlib at once
_BOM = b"\xef\xbb\xbf"
# On envelopes, level 3 compresses about as fast as 1 (~220 MB/s) to within 15% of the size of
# gzip's default 6, which takes twice as long.
_LEVEL = 3


def is_parquet(path: Path) -> bool:
    """Whether `path` names a Parquet event file (by its suffix, `.parquet`)."""
    return Path(path).suffix.lower() == ".parquet"


def read_events(
    path: Path, batch_size: int, on_progress: Callable[[int], None] | None = None
) -> Iterator[list[bytes]]:
    """The raw envelopes of any event file: `read_parquet` for `.parquet`, else `read_lines`."""
    if is_parquet(path):
        from factflow.transport.parquet import read_parquet

        return read_parquet(path, batch_size, on_progress)
    return read_lines(path, batch_size, on_progress)


def write_events(path: Path, messages: Iterable[bytes]) -> int:
    """Write any event file, by suffix: `.parquet` rows, else `.jsonl` (`.gz`) lines.

    The file appears under its name only once complete, as with `write_lines`. Raises
    `ValueError`, leaving `path` untouched, for a message the format cannot hold.
    """
    if is_parquet(path):
        from factflow.transport.parquet import write_parquet

        with _replaced(Path(path)) as file:
            return write_parquet(file, messages)
    return write_lines(path, messages)


def read_lines(
    path: Path, batch_size: int, on_progress: Callable[[int], None] | None = None
) -> Iterator[list[bytes]]:
    """Yield the lines of the file at `path`, without line endings, in lists of `batch_size`.

    A path ending in `.gz` is read as gzip (several concatenated members are fine). Lines that
    are empty or only whitespace are skipped; every other line is kept as it is, valid JSON or
    not. `\\n` and `\\r\\n` line ends are both understood, a last line needs none, and a UTF-8
    byte order mark at the start of the file is dropped. The last batch may be shorter.

    `on_progress`, if given, is called after each chunk with the number of bytes of the file
    (compressed bytes, for gzip) read so far, e.g. to advance a progress bar sized by
    `path.stat().st_size`.

    Raises `ValueError` if `batch_size` is below 1, `OSError` if the file cannot be read, and
    `DecodeError` if a gzip file is damaged or cut short; the lines before the damage are
    yielded first.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be 1 or more, got {batch_size}")
    path = Path(path)
    batch: list[bytes] = []
    rest: list[bytes] = []  # the start of a line that a later chunk completes
    with path.open("rb", buffering=0) as file:
        chunks = _gunzip(file, path) if path.suffix.lower() == ".gz" else _chunks(file)
        first = True
        try:
            for chunk in chunks:
                if on_progress is not None:
                    on_progress(file.tell())
                if b"\n" not in chunk:
                    rest.append(chunk)  # joined once the line ends: no quadratic copying
                    continue
                data = b"".join([*rest, chunk]) if rest else chunk
                if first and data.startswith(_BOM):
                    data = data[len(_BOM) :]
                first = False
                if b"\r" in data:
                    data = data.replace(b"\r\n", b"\n")
                lines = data.split(b"\n")
                rest = [lines.pop()]
                batch += [line for line in lines if line and not line.isspace()]
                if len(batch) >= batch_size:
                    cut = len(batch) - len(batch) % batch_size
                    for start in range(0, cut, batch_size):
                        yield batch[start : start + batch_size]
                    batch = batch[cut:]
        except DecodeError:
            if batch:
                yield batch
            raise
    last = b"".join(rest)
    if first and last.startswith(_BOM):
        last = last[len(_BOM) :]
    if last.endswith(b"\r"):
        last = last[:-1]
    if last and not last.isspace():
        batch.append(last)
    if batch:
        yield batch


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    while chunk := file.read(_CHUNK):
        yield chunk


def _gunzip(file: BinaryIO, path: Path) -> Iterator[bytes]:
    """The decompressed bytes of a gzip file, in pieces of at most `_OUT` bytes."""
    decompressor = zlib.decompressobj(_GZIP)
    begun = False  # whether the current member has received any input
    try:
        for chunk in _chunks(file):
            data = chunk
            while True:
                if not begun:
                    # Zero bytes may pad the end of a member (as some tools write them).
                    data = data.lstrip(b"\0")
                    begun = bool(data)
                # Bounding each output keeps memory flat even for a highly compressed file.
                out = decompressor.decompress(data, _OUT)
                if out:
                    yield out
                if decompressor.eof:
                    # Another member may follow, as `cat a.gz b.gz > c.gz` makes.
                    data = decompressor.unused_data
                    decompressor, begun = zlib.decompressobj(_GZIP), False
                    if not data:
                        break
                elif decompressor.unconsumed_tail or len(out) == _OUT:
                    data = decompressor.unconsumed_tail  # b"" still drains held-back output
                else:
                    break
    except zlib.error as error:
        raise DecodeError(f"{path}: not a valid gzip file ({error})") from None
    if begun:
        raise DecodeError(
            f"{path}: the gzip data ends before its end marker; the file was cut short"
            " (still being written, or copied incompletely)"
        )


def write_lines(path: Path, messages: Iterable[bytes]) -> int:
    """Write `messages` to `path`, one per line; returns how many.

    A path ending in `.gz` is written as gzip. The file appears under its name only once it is
    complete and on disk: it is written to a temporary file in the same directory and renamed.
    An existing file at `path` is replaced.

    Raises `ValueError`, leaving `path` untouched, for a message that would not read back as the
    same single line: empty or only whitespace, containing a newline, or ending in `\\r`.
    """
    path = Path(path)
    with _replaced(path) as file:
        if path.suffix.lower() == ".gz":
            with gzip.GzipFile(
                path.name, "wb", compresslevel=_LEVEL, fileobj=file, mtime=0
            ) as packed:
                return _write(packed.write, messages)
        return _write(file.write, messages)


@contextmanager
def _replaced(path: Path) -> Iterator[BinaryIO]:
    """A file to write that replaces `path` once the block ends without error, durably."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    # os.open (not tempfile) so that the file gets the usual permissions under the umask.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    try:
        with os.fdopen(fd, "wb", buffering=_CHUNK) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    # The rename is durable only once the directory is.
    directory = os.open(path.parent, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _write(write: Callable[[bytes], object], messages: Iterable[bytes]) -> int:
    count = 0
    pending: list[bytes] = []
    size = 0
    for message in messages:
        if not message or message.isspace() or b"\n" in message or message.endswith(b"\r"):
            raise ValueError(
                f"message {count + len(pending)} cannot be written as one line: it is empty,"
                f" blank, contains a newline or ends in \\r ({message[:60]!r})"
            )
        pending.append(message)
        size += len(message)
        if size >= _CHUNK:
            write(b"\n".join(pending))
            write(b"\n")
            count += len(pending)
            pending.clear()
            size = 0
    if pending:
        write(b"\n".join(pending))
        write(b"\n")
        count += len(pending)
    return count
