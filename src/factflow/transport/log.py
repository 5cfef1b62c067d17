"""The embedded log: a durable event log in a local directory, the default transport.

It needs no server. Publishers in several processes may append at once; each consumer group
keeps its own committed position. The layout of a log directory::

    card.log                        the records of one domain (the part of `type` before the dot)
    card.end                        where the last acknowledged publish ended (a hint, see below)
    groups/<group>/offsets.json     the committed position of `<group>` in every domain
    groups/<group>/.lock            held by the one process reading as `<group>`

A record is framed as (little-endian)::

    [u32 length][u32 crc32][u16 type length][type bytes][body]

`length` counts the bytes after the crc field and the crc32 covers exactly those bytes, so a
reader filters by type without parsing JSON and detects torn and damaged records.

What survives what:

- `publish` returns once the records are written and `fsync`-ed: a published event survives a
  crash of the process or the machine.
- A publisher killed in the middle of a write leaves an incomplete record at the end of a file.
  Readers stop before it; the next publisher cuts it off (under the file lock) before appending.
  Complete records of the interrupted call stay and are delivered: the call was never
  acknowledged, so republishing it is right, and the warehouse ignores the duplicates.
- A consumer killed at any moment resumes from its last `commit`; what it fetched after that is
  delivered again.
- A complete record whose crc32 does not match (damage on disk, a file edited by hand) is
  delivered as its raw stored bytes, header included, whatever types the group reads (the type
  may be what was damaged). Those bytes never decode as an envelope, so the runtime sets them
  aside as a dead letter with the bytes kept; the stream goes on. A header that cannot belong to
  any record is skipped up to the next intact record, and the bytes in between are delivered the
  same way; when no intact record follows it yet, it is treated as a torn end.

The embedded log serves one process per consumer group (an exclusive lock); to share a group's
load between processes, use a broker transport. Changing the event types of an existing group
does not replay the events it skipped before: use a new group, or bootstrap.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import struct
import threading
import time
import weakref
import zlib
from collections import deque
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

from factflow._closing import ClosesOnExit
from factflow.errors import ConfigurationError, TransportUnavailable
from factflow.transport.base import Outgoing

__all__ = ["MAX_BODY", "LogSubscription", "LogTransport"]

MAX_BODY = 64 * 1024 * 1024
"""The largest body the log accepts, in bytes (brokers limit messages in the same way)."""

_HEADER = struct.Struct("<IIH")  # length, crc32, type length
_HEAD = struct.Struct("<II")  # length, crc32: what a publisher packs before the cached type prefix
_TYPE_LENGTH = struct.Struct("<H")
_HINT = struct.Struct("<QI")  # end offset, crc32 of the offset
_OFFSET = struct.Struct("<Q")
_MAX_LENGTH = _TYPE_LENGTH.size + 0xFFFF + MAX_BODY
_CHUNK = 1024 * 1024  # bytes per read: one syscall for thousands of small records
_SCAN_BUDGET = 16 * 1024 * 1024  # bytes one fetch round may skip in a file before answering
_POLL = 0.02  # seconds between looks at the files while waiting for records
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*\Z")
_GROUP = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_OPEN = os.O_CLOEXEC


def _domain_of(event_type: str) -> str:
    domain = event_type.partition(".")[0]
    if not _NAME.match(domain):
        raise ValueError(
            f"event type {event_type!r}: the domain before the first dot must be letters, digits,"
            " `_` or `-` (it names the log file), e.g. 'card.card_issued'"
        )
    return domain


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:  # a write to a regular file may be partial (a signal, a full disk)
        view = view[os.write(fd, view) :]


def _fsync_directory(path: Path) -> None:
    # A created or renamed file is durable only once its directory entry is.
    fd = os.open(path, os.O_RDONLY | _OPEN)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LogTransport(ClosesOnExit):
    """The embedded, durable event log in the directory `path` (created if missing).

    >>> log = LogTransport(Path("factflow-data/log"))
    >>> log.publish([Outgoing(type="card.card_issued", id="e-1", body=b'{"id": "e-1", ...}')])
    1
    >>> sub = log.subscribe("kpi", ["card.card_issued"])
    >>> bodies = sub.fetch(1000, max_wait=0.5)
    >>> sub.commit()

    Raises `ConfigurationError` when `path` cannot be used as a directory. See the module
    documentation for the layout and what survives a crash.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._path = Path(path)
        try:
            self._path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigurationError(
                f"the embedded log needs a directory at {str(self._path)!r}: {error}"
            ) from None
        self._appenders: dict[str, _Appender] = {}
        self._types: dict[str, tuple[str, bytes, int]] = {}
        self._subscriptions: weakref.WeakSet[LogSubscription] = weakref.WeakSet()
        # flock excludes other processes, not threads sharing our file descriptor.
        self._lock = threading.Lock()
        self._closed = False

    @property
    def path(self) -> Path:
        """The log directory."""
        return self._path

    def __repr__(self) -> str:
        return f"LogTransport({str(self._path)!r})"

    def publish(self, messages: Iterable[Outgoing]) -> int:
        """Append `messages` durably; returns how many, once they are on disk.

        All records of one call go to each domain file in one write. Raises `ValueError` for a
        type whose domain cannot name a file or a body over `MAX_BODY` bytes (nothing of the call
        is written then), and `TransportUnavailable` when the disk refuses the write (the records
        of that domain are rolled back; domains written before stay).
        """
        self._check_open()
        pending: dict[str, list[bytes]] = {}
        # Per type of this call: where its records go, its framed type bytes and their crc32.
        routes: dict[str, tuple[Callable[[bytes], None], bytes, int, int]] = {}
        head = _HEAD.pack
        crc32 = zlib.crc32
        count = 0
        for message in messages:
            route = routes.get(message.type)
            if route is None:
                known = self._types.get(message.type)
                if known is None:
                    known = self._types[message.type] = _type_prefix(message.type)
                domain, prefix, prefix_crc = known
                parts = pending.setdefault(domain, [])
                route = routes[message.type] = (parts.append, prefix, prefix_crc, len(prefix))
            add, prefix, prefix_crc, prefix_length = route
            body = message.body
            length = len(body)
            if length > MAX_BODY:
                raise ValueError(
                    f"event {message.id!r} ({message.type}): body of {length} bytes exceeds"
                    f" the log's limit of {MAX_BODY} bytes"
                )
            add(head(prefix_length + length, crc32(body, prefix_crc)))
            add(prefix)
            add(body)
            count += 1
        for domain, parts in sorted(pending.items()):
            self._append(domain, b"".join(parts))
        return count

    def subscribe(self, group: str, event_types: Collection[str]) -> LogSubscription:
        """Read as consumer group `group`, from its committed position, only `event_types`.

        Raises `ConfigurationError` when another process (or subscription) already reads as
        `group`, or when the group's committed positions do not fit the files.
        """
        self._check_open()
        subscription = LogSubscription(self._path, group, event_types)
        self._subscriptions.add(subscription)
        return subscription

    def lag(self, group: str) -> dict[str, int]:
        """Bytes of each domain file that `group` has not committed yet.

        Reads the committed positions without taking the group's lock, so it works while a
        consumer runs (e.g. for `factflow status`).
        """
        committed = _read_offsets(self._path / "groups" / _group_name(group) / "offsets.json")
        return {
            file.stem: max(0, file.stat().st_size - committed.get(file.stem, 0))
            for file in sorted(self._path.glob("*.log"))
        }

    def depth(self, group: str) -> int:
        """The backlog of `group` in bytes (the log does not count records without reading)."""
        return sum(self.lag(group).values())

    def close(self) -> None:
        """Close the files and every subscription opened here (releasing their groups)."""
        self._closed = True
        for subscription in list(self._subscriptions):
            subscription.close()
        with self._lock:
            for appender in self._appenders.values():
                appender.close()
            self._appenders.clear()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"{self!r} is closed")

    def _append(self, domain: str, data: bytes) -> None:
        with self._lock:
            appender = self._appenders.get(domain)
            if appender is None:
                appender = self._appenders[domain] = _Appender(self._path, domain)
            appender.append(data)


def _type_prefix(event_type: str) -> tuple[str, bytes, int]:
    """The domain, the `[u16 type length][type]` bytes and their crc32, computed once per type."""
    domain = _domain_of(event_type)
    encoded = event_type.encode()
    if len(encoded) > 0xFFFF:
        raise ValueError(f"event type {event_type[:40]!r}...: longer than 65535 bytes")
    prefix = _TYPE_LENGTH.pack(len(encoded)) + encoded
    return domain, prefix, zlib.crc32(prefix)


class _Appender:
    """The publishing side of one domain file."""

    def __init__(self, directory: Path, domain: str) -> None:
        self._name = f"{domain}.log"
        path = directory / self._name
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL | _OPEN)
        except FileExistsError:
            self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | _OPEN)
        else:
            _fsync_directory(directory)
        # The hint holds where the last acknowledged publish ended, so that checking for a
        # torn tail reads only what came after it instead of the whole file. It is written
        # after the records are fsync-ed, and not fsync-ed itself: a lost or stale hint only
        # makes the next check read more.
        self._hint = os.open(directory / f"{domain}.end", os.O_RDWR | os.O_CREAT | _OPEN, 0o644)
        self._reader = os.open(path, os.O_RDONLY | _OPEN)

    def append(self, data: bytes) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        try:
            start = self._repair()
            try:
                _write_all(self.fd, data)
                os.fsync(self.fd)
            except OSError as error:
                with contextlib.suppress(OSError):
                    os.ftruncate(self.fd, start)
                raise TransportUnavailable(f"cannot append to {self._name}: {error}") from error
            end = start + len(data)
            os.pwrite(self._hint, _HINT.pack(end, zlib.crc32(_OFFSET.pack(end))), 0)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def _repair(self) -> int:
        """Cut off an incomplete record at the end of the file; returns the end (lock held)."""
        size = os.fstat(self.fd).st_size
        hint = os.pread(self._hint, _HINT.size, 0)
        start = 0
        if len(hint) == _HINT.size:
            end, check = _HINT.unpack(hint)
            if check == zlib.crc32(_OFFSET.pack(end)) and end <= size:
                start = end
        if start == size:
            return size
        # The same walk as the readers', so that the cut is exactly where they stop waiting.
        segment = _Segment(self._reader, start)
        while segment.read(frozenset(), 1 << 30, [], 1 << 62):
            pass
        if segment.pos < size:
            os.ftruncate(self.fd, segment.pos)
        return segment.pos

    def close(self) -> None:
        for fd in (self.fd, self._hint, self._reader):
            os.close(fd)


class _Segment:
    """Reads the records of one domain file from `pos` on, in large chunks."""

    def __init__(self, fd: int, pos: int, domain: str = "") -> None:
        self.fd = fd
        self.pos = pos
        self.domain = domain
        self._buffer = b""
        self._base = pos  # the file offset of self._buffer[0]
        self._stuck: tuple[int, int] | None = None  # (pos, size) where no intact record followed

    def read(
        self, wanted: frozenset[bytes] | None, limit: int, out: list[bytes], budget: int
    ) -> int:
        """Append the bodies of up to `limit` records of the `wanted` types to `out`.

        Other records are skipped. Stops at the end of the complete records, or once `budget`
        bytes were passed; returns how many bytes the position advanced.
        """
        buffer, base, start = self._buffer, self._base, self.pos
        view = memoryview(buffer)
        i, size = start - base, len(buffer)
        unpack, crc32 = _HEADER.unpack_from, zlib.crc32
        fresh = False  # whether `buffer` was read during this call, at or before `i`
        taken = 0
        while taken < limit:
            if size - i >= _HEADER.size:
                length, crc, type_length = unpack(buffer, i)
                end = i + 8 + length
                if length < 2 or length > _MAX_LENGTH or type_length > length - 2:
                    if not fresh:  # judge only what the file holds now, never a stale copy
                        need = _HEADER.size
                    else:
                        damaged = self._skip_damage(base + i)
                        if damaged is None:
                            break
                        out.append(damaged)
                        taken += 1
                        buffer, base, i, size, view = b"", self.pos, 0, 0, memoryview(b"")
                        fresh = False
                        continue
                elif end <= size:
                    if crc32(view[i + 8 : end]) != crc:
                        out.append(buffer[i:end])  # undecodable as JSON: becomes a dead letter
                        taken += 1
                    elif wanted is None or buffer[i + 10 : i + 10 + type_length] in wanted:
                        out.append(buffer[i + 10 + type_length : end])
                        taken += 1
                    i = end
                    continue
                else:
                    need = 8 + length
            else:
                need = _HEADER.size
            if fresh and i == 0:
                break  # the record at the end is incomplete: being written, or torn
            if base + i - start >= budget:
                break
            base += i
            buffer = os.pread(self.fd, max(_CHUNK, need), base)
            view, i, size, fresh = memoryview(buffer), 0, len(buffer), True
        self._buffer, self._base = buffer, base
        self.pos = base + i
        return self.pos - start

    def _skip_damage(self, pos: int) -> bytes | None:
        """The bytes from `pos` to the next intact record, moving there; None if none follows."""
        size = os.fstat(self.fd).st_size
        if self._stuck == (pos, size):
            return None  # searched already, and the file has not grown since
        found = _find_intact(self.fd, pos + 1, size)
        if found is None:
            # Nothing intact after it: like a torn tail, which the next publisher cuts off.
            self._stuck = (pos, size)
            return None
        self.pos = found
        return os.pread(self.fd, found - pos, pos)


def _find_intact(fd: int, pos: int, size: int) -> int | None:
    """The first offset from `pos` where an intact record starts (a slow byte-by-byte search)."""
    window, base = b"", pos
    while pos + _HEADER.size <= size:
        if pos + _HEADER.size > base + len(window):
            window, base = os.pread(fd, _CHUNK, pos), pos
            if len(window) < _HEADER.size:
                return None
        length, crc, type_length = _HEADER.unpack_from(window, pos - base)
        if 2 <= length <= _MAX_LENGTH and type_length <= length - 2 and pos + 8 + length <= size:
            first, last = pos - base + 8, pos - base + 8 + length
            payload = window[first:last] if last <= len(window) else os.pread(fd, length, pos + 8)
            if zlib.crc32(payload) == crc:
                return pos
        pos += 1
    return None


def _group_name(group: str) -> str:
    if not _GROUP.match(group):
        raise ConfigurationError(
            f"consumer group {group!r}: use letters, digits, `_`, `-` or `.` (it names a"
            " directory), starting with a letter, digit or `_`"
        )
    return group


def _read_offsets(path: Path) -> dict[str, int]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        offsets = json.loads(text)["offsets"]
        if not all(isinstance(value, int) and value >= 0 for value in offsets.values()):
            raise ValueError("offsets must be integers of 0 or more")
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ConfigurationError(
            f"{path}: not a factflow offsets file ({error}); restore it, or delete it to read"
            " the log again from the start"
        ) from None
    return {str(name): value for name, value in offsets.items()}


class LogSubscription(ClosesOnExit):
    """A consumer group's position in the embedded log; made by `LogTransport.subscribe`.

    Holds the group's lock until `close`. Not thread-safe: one reader per subscription.
    """

    def __init__(self, directory: Path, group: str, event_types: Collection[str]) -> None:
        self._group = _group_name(group)
        # `<domain>.*` asks for every type of the domain (None: no filter for that segment).
        self._wanted: dict[str, frozenset[bytes] | None] = {}
        for event_type in event_types:
            domain = _domain_of(event_type)
            if event_type == f"{domain}.*":
                self._wanted[domain] = None
            elif (known := self._wanted.setdefault(domain, frozenset())) is not None:
                self._wanted[domain] = known | {event_type.encode()}
        domains = sorted(self._wanted)
        self._directory = directory / "groups" / self._group
        self._directory.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self._directory / ".lock", os.O_RDWR | os.O_CREAT | _OPEN, 0o644)
        self._segments: dict[str, _Segment] = {}
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise ConfigurationError(
                f"consumer group {group!r} is already being read from the log at"
                f" {str(directory)!r} by another process (or subscription): the embedded log"
                " serves one process per consumer group. Stop the other consumer, or use a broker"
                " transport (RabbitMQ, NATS) to share a group's load between processes."
            ) from None
        try:
            self._stored = _read_offsets(self._directory / "offsets.json")
            for domain in domains:
                fd = os.open(directory / f"{domain}.log", os.O_RDONLY | os.O_CREAT | _OPEN, 0o644)
                position = self._stored.get(domain, 0)
                self._segments[domain] = _Segment(fd, position, domain)
                size = os.fstat(fd).st_size
                if position > size:
                    raise ConfigurationError(
                        f"consumer group {group!r} committed position {position} in"
                        f" {domain}.log, which has only {size} bytes: the log was replaced or cut."
                        f" Delete {self._directory / 'offsets.json'} to read it from the start."
                    )
        except BaseException:
            self._release()
            raise
        self._committed = {domain: s.pos for domain, s in self._segments.items()}
        #: Per fetch not committed yet: the reading positions right after it.
        self._fetches: deque[dict[str, int]] = deque()
        self._order = list(self._segments.values())
        self._turn = 0
        self._closed = False

    @property
    def group(self) -> str:
        """The consumer group."""
        return self._group

    def fetch(self, max_messages: int, max_wait: float) -> list[bytes]:
        """Up to `max_messages` bodies, waiting at most `max_wait` seconds for the first.

        Returns an empty list when nothing arrived in time. Domains take turns, so a backlog in
        one does not starve the others. A damaged record arrives as its raw stored bytes (see
        the module documentation).
        """
        self._check_open()
        if max_messages <= 0:
            return []
        deadline = time.monotonic() + max(0.0, max_wait)
        while True:
            out: list[bytes] = []
            advanced = self._round(out, max_messages)
            remaining = deadline - time.monotonic()
            if out:
                self._fetches.append({d: segment.pos for d, segment in self._segments.items()})
                return out
            if remaining <= 0:
                return out
            if not advanced:
                time.sleep(min(_POLL, remaining))

    def _round(self, out: list[bytes], max_messages: int) -> int:
        count = len(self._order)
        if count == 0:
            return 0
        turn = self._turn % count
        self._turn += 1
        order = self._order[turn:] + self._order[:turn]
        share = -(-max_messages // count)
        advanced = 0
        full = []
        for segment in order:
            before = len(out)
            advanced += segment.read(
                self._wanted[segment.domain], min(share, max_messages - before), out, _SCAN_BUDGET
            )
            if len(out) - before == share:
                full.append(segment)
        for segment in full:  # the others are at their end: give their share to the busy ones
            if len(out) >= max_messages:
                break
            advanced += segment.read(
                self._wanted[segment.domain], max_messages - len(out), out, _SCAN_BUDGET
            )
        return advanced

    def commit(self, batches: int | None = None) -> None:
        """Acknowledge the oldest `batches` fetches not committed yet (all by default), durably
        (written, fsync-ed, renamed).

        Raises `TransportUnavailable` when the disk refuses; nothing is acknowledged then, and a
        later `commit` may succeed.
        """
        self._check_open()
        fetches = self._fetches
        if batches is None or batches >= len(fetches):
            # Also past what fetches skipped after the last batch (other groups' types).
            positions = {domain: segment.pos for domain, segment in self._segments.items()}
            done = len(fetches)
        elif batches <= 0:
            return
        else:
            positions, done = fetches[batches - 1], batches
        if positions != self._committed:
            self._store(positions)
        for _ in range(done):
            fetches.popleft()

    def _store(self, positions: dict[str, int]) -> None:
        offsets = {**self._stored, **positions}
        data = json.dumps({"offsets": offsets}, sort_keys=True).encode()
        temporary = self._directory / "offsets.json.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _OPEN, 0o644)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            # The rename replaces the old positions all at once, so a kill at any moment
            # leaves either the old or the new ones.
            temporary.replace(self._directory / "offsets.json")
            _fsync_directory(self._directory)
        except OSError as error:
            raise TransportUnavailable(
                f"cannot commit consumer group {self._group!r} in {self._directory}: {error}"
            ) from error
        self._stored, self._committed = offsets, positions

    def lag(self) -> dict[str, int]:
        """Bytes of each subscribed domain file not committed yet."""
        self._check_open()
        return {
            domain: max(0, os.fstat(segment.fd).st_size - self._committed[domain])
            for domain, segment in self._segments.items()
        }

    def close(self) -> None:
        """Release the group; what was fetched and not committed will be delivered again."""
        if not getattr(self, "_closed", True):
            self._closed = True
            self._release()

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"the subscription of group {self._group!r} is closed")

    def _release(self) -> None:
        for segment in self._segments.values():
            os.close(segment.fd)
        self._segments.clear()
        os.close(self._lock)  # closing the descriptor releases the flock
