"""Event files: reading lines in batches and writing them atomically, plain and gzip."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from factflow.errors import DecodeError
from factflow.transport.files import read_lines, write_lines


def lines_of(path: Path, batch_size: int = 1000) -> list[bytes]:
    return [line for batch in read_lines(path, batch_size) for line in batch]


@pytest.mark.parametrize("name", ["events.jsonl", "events.jsonl.gz"])
def test_written_lines_read_back_in_order(tmp_path: Path, name: str) -> None:
    messages = [b'{"id": "%d"}' % number for number in range(2500)]
    path = tmp_path / name

    assert write_lines(path, iter(messages)) == 2500

    assert lines_of(path) == messages


def test_gz_suffix_writes_real_gzip(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    write_lines(path, [b"a", b"b"])

    assert gzip.decompress(path.read_bytes()) == b"a\nb\n"


def test_batches_have_the_requested_size_and_a_shorter_last_one(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_lines(path, [b"%d" % number for number in range(10)])

    assert [len(batch) for batch in read_lines(path, 4)] == [4, 4, 2]


def test_crlf_endings_and_a_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"a": 1}\r\n{"b": 2}\r\n{"c": 3}')

    assert lines_of(path) == [b'{"a": 1}', b'{"b": 2}', b'{"c": 3}']


def test_a_last_line_ending_in_cr_loses_only_the_cr(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"one\r\ntwo\r")

    assert lines_of(path) == [b"one", b"two"]


def test_empty_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n\na\n   \n\t\r\nb\n\n")

    assert lines_of(path) == [b"a", b"b"]


def test_invalid_json_lines_are_kept_as_they_are(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'{"ok": 1}\nnot json at all\n{"truncated": \n  {"indented": 2}\n')

    assert lines_of(path) == [
        b'{"ok": 1}',
        b"not json at all",
        b'{"truncated": ',
        b'  {"indented": 2}',
    ]


def test_a_byte_order_mark_at_the_start_is_dropped(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"b": 2}\n')

    assert lines_of(path) == [b'{"a": 1}', b'{"b": 2}']


def test_an_empty_file_yields_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "empty.jsonl.gz").write_bytes(b"")

    assert list(read_lines(tmp_path / "empty.jsonl", 10)) == []
    assert list(read_lines(tmp_path / "empty.jsonl.gz", 10)) == []


def test_lines_longer_than_a_read_chunk_stay_whole(tmp_path: Path) -> None:
    long_lines = [b"x" * 3_000_000, b"y" * 10, b"z" * 2_500_000]
    path = tmp_path / "events.jsonl.gz"
    write_lines(path, long_lines)

    assert lines_of(path) == long_lines


def test_crlf_split_across_read_chunks_is_one_line_end(tmp_path: Path) -> None:
    first = b"a" * (1024 * 1024 - 1)  # its \r ends the first 1 MiB read, its \n starts the next
    path = tmp_path / "events.jsonl"
    path.write_bytes(first + b"\r\nb\r\n")

    assert lines_of(path) == [first, b"b"]


def test_concatenated_gzip_members_read_as_one_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress(b"a\nb\n") + gzip.compress(b"c\n") + b"\0\0\0")

    assert lines_of(path) == [b"a", b"b", b"c"]


def test_highly_compressed_gzip_reads_correctly(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(gzip.compress((b"{}" * 100 + b"\n") * 200_000))

    assert sum(len(batch) for batch in read_lines(path, 7000)) == 200_000


def test_a_cut_gzip_file_yields_the_lines_before_and_then_fails(tmp_path: Path) -> None:
    complete = b"".join(b'{"id": "%d", "pad": "%d"}\n' % (n, n * 7919) for n in range(50_000))
    packed = zlib.compressobj(1, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    path = tmp_path / "events.jsonl.gz"
    data = packed.compress(complete) + packed.flush()
    path.write_bytes(data[: len(data) // 2])
    seen: list[bytes] = []

    with pytest.raises(DecodeError, match="cut short"):
        for batch in read_lines(path, 1000):
            seen += batch

    assert seen  # what came before the cut was delivered
    assert seen == complete.split(b"\n")[: len(seen)]


def test_a_file_that_is_not_gzip_fails_with_its_path(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    path.write_bytes(b'{"id": "plain text"}\n')

    with pytest.raises(DecodeError, match=r"events\.jsonl\.gz: not a valid gzip file"):
        list(read_lines(path, 10))


def test_progress_reports_bytes_of_the_file_up_to_its_size(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"
    write_lines(path, [b'{"id": "%d"}' % n for n in range(300_000)])
    reported: list[int] = []

    for _ in read_lines(path, 1000, on_progress=reported.append):
        pass

    assert reported == sorted(reported)
    assert reported[-1] == path.stat().st_size


def test_batch_size_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        next(read_lines(tmp_path / "events.jsonl", 0))


@pytest.mark.parametrize("bad", [b"", b"  ", b"two\nlines", b"ends in cr\r"])
def test_a_message_that_is_not_one_line_is_refused_and_nothing_written(
    tmp_path: Path, bad: bytes
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"old content\n")

    with pytest.raises(ValueError, match="message 1 cannot be written as one line"):
        write_lines(path, [b"fine", bad])

    assert path.read_bytes() == b"old content\n"
    assert [p.name for p in tmp_path.iterdir()] == ["events.jsonl"]


def test_a_writer_stopped_midway_leaves_no_file_under_the_final_name(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl.gz"

    def messages_then_failure() -> Iterator[bytes]:
        yield b'{"id": "1"}'
        raise KeyboardInterrupt  # as if the writer were interrupted

    with pytest.raises(KeyboardInterrupt):
        write_lines(path, messages_then_failure())

    assert list(tmp_path.iterdir()) == []


def test_rewriting_replaces_the_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_lines(path, [b"a", b"b", b"c"])
    write_lines(path, [b"d"])

    assert lines_of(path) == [b"d"]
