"""The embedded log: delivery, consumer groups, and what survives killed processes and damage."""

from __future__ import annotations

import functools
import json
import random
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
import pytest

from factflow.errors import ConfigurationError
from factflow.transport.base import Outgoing, Subscription, Transport
from factflow.transport.log import LogSubscription, LogTransport


def event(event_type: str, number: int) -> Outgoing:
    body = json.dumps({"id": f"{event_type}-{number}", "type": event_type, "n": number})
    return Outgoing(type=event_type, id=f"{event_type}-{number}", body=body.encode())


def record(event_type: str, body: bytes) -> bytes:
    """A record framed by hand, as the log stores it."""
    payload = struct.pack("<H", len(event_type)) + event_type.encode() + body
    return struct.pack("<II", len(payload), zlib.crc32(payload)) + payload


def drain(subscription: Subscription, batch: int = 1000) -> list[bytes]:
    bodies: list[bytes] = []
    while fetched := subscription.fetch(batch, 0):
        bodies += fetched
    return bodies


@pytest.fixture
def log(tmp_path: Path) -> Iterator[LogTransport]:
    transport = LogTransport(tmp_path / "log")
    yield transport
    transport.close()


def test_implements_the_transport_protocols(log: LogTransport) -> None:
    transport: Transport = log
    subscription: Subscription = log.subscribe("kpi", ["card.card_issued"])
    assert transport is log
    assert isinstance(subscription, LogSubscription)


def test_published_events_are_fetched_in_order_per_domain(log: LogTransport) -> None:
    cards = [event("card.card_issued", n) for n in range(300)]
    users = [event("user.user_created", n) for n in range(200)]

    assert log.publish(cards[:150] + users + cards[150:]) == 500

    bodies = drain(log.subscribe("kpi", ["card.card_issued", "user.user_created"]), 64)
    assert [b for b in bodies if b"card." in b] == [m.body for m in cards]
    assert [b for b in bodies if b"user." in b] == [m.body for m in users]


def test_one_file_per_domain(log: LogTransport) -> None:
    log.publish([event("card.card_issued", 1), event("goal.goal_created", 1)])

    assert sorted(p.name for p in log.path.glob("*.log")) == ["card.log", "goal.log"]


def test_publishing_nothing_returns_zero(log: LogTransport) -> None:
    assert log.publish([]) == 0


def test_only_the_subscribed_types_are_delivered(log: LogTransport) -> None:
    log.publish([event("card.card_issued", 1), event("card.transaction_settled", 2)] * 50)
    subscription = log.subscribe("kpi", ["card.transaction_settled"])

    bodies = drain(subscription)
    subscription.commit()

    assert bodies == [event("card.transaction_settled", 2).body] * 50
    assert subscription.lag() == {"card": 0}  # the skipped records are passed for good


def test_groups_read_independently(log: LogTransport) -> None:
    messages = [event("card.card_issued", n) for n in range(20)]
    log.publish(messages)
    first = log.subscribe("kpi", ["card.card_issued"])
    second = log.subscribe("audit", ["card.card_issued"])

    assert first.fetch(15, 0) == [m.body for m in messages[:15]]
    first.commit()

    assert drain(second) == [m.body for m in messages]
    assert first.fetch(100, 0) == [m.body for m in messages[15:]]


def test_a_group_resumes_after_its_last_commit(log: LogTransport) -> None:
    messages = [event("card.card_issued", n) for n in range(10)]
    log.publish(messages)
    subscription = log.subscribe("kpi", ["card.card_issued"])
    subscription.fetch(4, 0)
    subscription.commit()
    subscription.close()

    again = log.subscribe("kpi", ["card.card_issued"])

    assert drain(again) == [m.body for m in messages[4:]]


def test_fetched_but_uncommitted_events_are_delivered_again(log: LogTransport) -> None:
    messages = [event("card.card_issued", n) for n in range(10)]
    log.publish(messages)
    subscription = log.subscribe("kpi", ["card.card_issued"])
    subscription.fetch(3, 0)
    subscription.commit()
    subscription.fetch(5, 0)
    subscription.close()  # without committing the last five

    again = log.subscribe("kpi", ["card.card_issued"])

    assert drain(again) == [m.body for m in messages[3:]]


def test_committing_the_older_of_two_fetches_keeps_the_newer_uncommitted(
    log: LogTransport,
) -> None:
    messages = [event("card.card_issued", n) for n in range(10)]
    log.publish(messages)
    subscription = log.subscribe("kpi", ["card.card_issued"])
    subscription.fetch(3, 0)
    subscription.fetch(5, 0)
    subscription.commit(1)  # the older one is written, the newer one is still being written
    subscription.close()

    again = log.subscribe("kpi", ["card.card_issued"])

    assert drain(again) == [m.body for m in messages[3:]]


def test_commit_takes_the_fetches_in_order(log: LogTransport) -> None:
    messages = [event("card.card_issued", n) for n in range(10)]
    log.publish(messages)
    subscription = log.subscribe("kpi", ["card.card_issued"])
    for size in (2, 3, 4):
        subscription.fetch(size, 0)
    subscription.commit(1)
    subscription.commit(1)
    subscription.close()

    again = log.subscribe("kpi", ["card.card_issued"])

    assert drain(again) == [m.body for m in messages[5:]]


def test_commit_survives_a_new_transport_on_the_same_directory(tmp_path: Path) -> None:
    with LogTransport(tmp_path) as writer:
        writer.publish([event("card.card_issued", n) for n in range(5)])
        with writer.subscribe("kpi", ["card.card_issued"]) as subscription:
            subscription.fetch(2, 0)
            subscription.commit()

    with LogTransport(tmp_path) as reader:
        assert len(drain(reader.subscribe("kpi", ["card.card_issued"]))) == 3


def test_fetch_waits_at_most_max_wait_when_nothing_comes(log: LogTransport) -> None:
    subscription = log.subscribe("kpi", ["card.card_issued"])

    started = time.monotonic()
    assert subscription.fetch(10, 0.2) == []
    waited = time.monotonic() - started

    assert 0.2 <= waited < 2


def test_fetch_returns_events_published_while_it_waits(log: LogTransport) -> None:
    subscription = log.subscribe("kpi", ["card.card_issued"])
    message = event("card.card_issued", 1)
    publisher = threading.Timer(0.1, log.publish, [[message]])
    publisher.start()

    try:
        assert subscription.fetch(10, 5) == [message.body]
    finally:
        publisher.join()


def test_domains_take_turns_in_a_batch(log: LogTransport) -> None:
    log.publish([event("card.card_issued", n) for n in range(100)])
    log.publish([event("user.user_created", n) for n in range(100)])
    subscription = log.subscribe("kpi", ["card.card_issued", "user.user_created"])

    batch = subscription.fetch(10, 0)

    assert sum(b"card." in body for body in batch) == 5
    assert sum(b"user." in body for body in batch) == 5


def test_a_domain_without_events_gives_its_share_to_the_others(log: LogTransport) -> None:
    log.publish([event("card.card_issued", n) for n in range(100)])
    subscription = log.subscribe("kpi", ["card.card_issued", "user.user_created"])

    assert len(subscription.fetch(10, 0)) == 10


def test_lag_counts_bytes_not_yet_committed(log: LogTransport) -> None:
    log.publish([event("card.card_issued", n) for n in range(10)])
    log.publish([event("user.user_created", 1)])
    size = (log.path / "card.log").stat().st_size
    subscription = log.subscribe("kpi", ["card.card_issued"])

    assert subscription.lag() == {"card": size}
    drain(subscription)
    assert subscription.lag() == {"card": size}  # fetched is not committed
    subscription.commit()

    assert subscription.lag() == {"card": 0}
    assert log.lag("kpi") == {"card": 0, "user": (log.path / "user.log").stat().st_size}
    assert log.lag("never-subscribed")["card"] == size


def test_a_type_that_cannot_name_a_file_is_refused_and_nothing_written(log: LogTransport) -> None:
    with pytest.raises(ValueError, match="domain before the first dot"):
        log.publish([event("card.card_issued", 1), event("../etc.passwd", 2)])

    assert list(log.path.glob("*.log")) == []


def test_an_invalid_group_name_is_a_configuration_error(log: LogTransport) -> None:
    with pytest.raises(ConfigurationError, match=r"consumer group '\.\./x'"):
        log.subscribe("../x", ["card.card_issued"])


def test_a_second_subscriber_of_a_group_is_refused(log: LogTransport) -> None:
    first = log.subscribe("kpi", ["card.card_issued"])

    with pytest.raises(ConfigurationError, match="serves one process per consumer group"):
        log.subscribe("kpi", ["user.user_created"])

    first.close()
    log.subscribe("kpi", ["card.card_issued"]).close()  # free again once closed


def test_a_group_held_by_another_process_is_refused_until_that_process_dies(
    log: LogTransport,
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(log.path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "subscribed\n"

        with pytest.raises(ConfigurationError, match="broker transport"):
            log.subscribe("kpi", ["card.card_issued"])
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()

    log.subscribe("kpi", ["card.card_issued"]).close()  # the kernel released the lock


HOLDER = """
import sys, time
from pathlib import Path
from factflow.transport.log import LogTransport
subscription = LogTransport(Path(sys.argv[1])).subscribe("kpi", ["card.card_issued"])
print("subscribed", flush=True)
time.sleep(60)
"""


def test_a_committed_position_beyond_the_file_is_a_configuration_error(
    log: LogTransport,
) -> None:
    log.publish([event("card.card_issued", n) for n in range(3)])
    subscription = log.subscribe("kpi", ["card.card_issued"])
    drain(subscription)
    subscription.commit()
    subscription.close()
    (log.path / "card.log").write_bytes(b"")  # the log was replaced behind the group's back

    with pytest.raises(ConfigurationError, match="committed position"):
        log.subscribe("kpi", ["card.card_issued"])


@pytest.mark.parametrize("hint", ["kept", "lost"])
def test_a_torn_tail_is_ignored_by_readers_and_cut_by_the_next_publisher(
    log: LogTransport, hint: str
) -> None:
    before = [event("card.card_issued", n) for n in range(3)]
    after = [event("card.card_issued", n) for n in range(3, 6)]
    log.publish(before)
    segment = log.path / "card.log"
    intact = segment.stat().st_size
    torn = record("card.card_issued", b'{"id": "half-written"}')
    with segment.open("ab") as file:  # a publisher killed in the middle of its write
        file.write(torn[: len(torn) // 2])
    if hint == "lost":
        (log.path / "card.end").unlink()
    subscription = log.subscribe("kpi", ["card.card_issued"])

    assert drain(subscription) == [m.body for m in before]
    assert subscription.fetch(10, 0.05) == []  # waits at the torn record, without error

    with LogTransport(log.path) as other_publisher:
        other_publisher.publish(after)

    assert segment.stat().st_size == intact + sum(len(record(m.type, m.body)) for m in after)
    assert drain(subscription) == [m.body for m in after]


def test_a_torn_header_shorter_than_a_header_is_cut_too(log: LogTransport) -> None:
    log.publish([event("card.card_issued", 1)])
    segment = log.path / "card.log"
    with segment.open("ab") as file:
        file.write(b"\x07\x00")
    log.publish([event("card.card_issued", 2)])

    assert drain(log.subscribe("kpi", ["card.card_issued"])) == [
        event("card.card_issued", 1).body,
        event("card.card_issued", 2).body,
    ]


def test_a_damaged_record_arrives_as_raw_bytes_that_are_not_json(log: LogTransport) -> None:
    messages = [event("card.card_issued", n) for n in range(3)]
    log.publish(messages)
    segment = log.path / "card.log"
    data = bytearray(segment.read_bytes())
    second = len(record(messages[0].type, messages[0].body))
    data[second + 30] ^= 0x01  # one flipped bit inside the second record's body
    segment.write_bytes(bytes(data))
    damaged = bytes(data[second : second + len(record(messages[1].type, messages[1].body))])

    bodies = drain(log.subscribe("kpi", ["card.card_issued"]))

    assert bodies == [messages[0].body, damaged, messages[2].body]
    with pytest.raises(msgspec.DecodeError):
        msgspec.json.decode(bodies[1])


def test_a_damaged_record_of_another_type_is_still_delivered(log: LogTransport) -> None:
    log.publish([event("card.card_issued", 1), event("card.transaction_settled", 2)])
    segment = log.path / "card.log"
    data = bytearray(segment.read_bytes())
    data[-5] ^= 0x01  # damage in the transaction: its type may be the damaged part
    segment.write_bytes(bytes(data))

    bodies = drain(log.subscribe("kpi", ["card.card_issued"]))

    assert len(bodies) == 2
    assert bodies[0] == event("card.card_issued", 1).body


def test_a_damaged_header_is_skipped_to_the_next_intact_record(log: LogTransport) -> None:
    messages = [event("card.card_issued", n) for n in range(3)]
    log.publish(messages)
    segment = log.path / "card.log"
    data = bytearray(segment.read_bytes())
    second = len(record(messages[0].type, messages[0].body))
    third = second + len(record(messages[1].type, messages[1].body))
    data[second : second + 4] = b"\xff\xff\xff\xff"  # a length no record can have
    segment.write_bytes(bytes(data))

    bodies = drain(log.subscribe("kpi", ["card.card_issued"]))

    assert bodies == [messages[0].body, bytes(data[second:third]), messages[2].body]


def test_concurrent_publisher_processes_lose_nothing(log: LogTransport) -> None:
    publishers = [
        subprocess.Popen([sys.executable, "-c", PUBLISHER, str(log.path), name])
        for name in ("a", "b")
    ]
    for publisher in publishers:
        assert publisher.wait(timeout=60) == 0

    bodies = drain(log.subscribe("check", ["card.card_issued", "user.user_created"]))

    decoded = [json.loads(body) for body in bodies]  # nothing damaged
    assert len(decoded) == 2 * 2 * 1000
    for name in ("a", "b"):
        for domain in ("card", "user"):
            numbers = [d["n"] for d in decoded if d["p"] == name and d["d"] == domain]
            assert numbers == list(range(1000))  # all of them, in the order published


PUBLISHER = """
import json, sys, time
from pathlib import Path
from factflow.transport.base import Outgoing
from factflow.transport.log import LogTransport
log, name = LogTransport(Path(sys.argv[1])), sys.argv[2]
def message(domain, n):
    body = json.dumps({"p": name, "d": domain, "n": n}).encode()
    return Outgoing(type=f"{domain}.{'card_issued' if domain == 'card' else 'user_created'}",
                    id=f"{name}-{domain}-{n}", body=body)
(log.path / f"ready-{name}").touch()
while len(list(log.path.glob("ready-*"))) < 2:  # start together, to contend for the files
    time.sleep(0.001)
for start in range(0, 1000, 10):
    log.publish([message(d, n) for n in range(start, start + 10) for d in ("card", "user")])
"""


CONSUMER = """
import json, os, random, sys, time
from pathlib import Path
from factflow.transport.log import LogTransport
directory, notes = Path(sys.argv[1]), sys.argv[2]
fd = os.open(notes, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
def note(entry):
    os.write(fd, (json.dumps(entry) + "\\n").encode())
    os.fsync(fd)
subscription = LogTransport(directory).subscribe("kpi", ["card.card_issued", "user.user_created"])
note({"started": True})
while True:
    bodies = subscription.fetch(random.randint(1, 40), 0.01)
    if bodies:
        note({"fetched": [body.decode() for body in bodies]})
        time.sleep(random.uniform(0, 0.004))  # as if writing to the warehouse
        subscription.commit()
        note({"committed": True})
"""


def test_a_consumer_killed_at_random_moments_commits_every_event_once_in_order(
    log: LogTransport, tmp_path: Path
) -> None:
    """Each run notes a batch before committing it and notes the commit after.

    A run killed between the two leaves one batch in doubt: it was committed exactly when the
    next runs do not deliver it again. Counting committed batches only, every event must then
    appear exactly once, in the order published.
    """
    chance = random.Random(20260301)
    total, kills = 6000, 8
    published = {
        "card": [event("card.card_issued", n) for n in range(total)],
        "user": [event("user.user_created", n) for n in range(total)],
    }
    notes = tmp_path / "notes.jsonl"
    for run in range(kills + 1):
        # Some events before each run, so that kills land mid-stream and the tail moves.
        start, end = run * total // kills, min(total, (run + 1) * total // kills)
        log.publish(published["card"][start:end] + published["user"][start:end])
        consumer = subprocess.Popen([sys.executable, "-c", CONSUMER, str(log.path), str(notes)])
        try:
            wait_for(functools.partial(started, notes, run + 1))
            if run < kills:
                time.sleep(chance.uniform(0.02, 0.3))
            else:  # let the last run finish; the checks below say what went wrong if it cannot
                wait_for(lambda: not any(log.lag("kpi").values()), required=False)
        finally:
            consumer.send_signal(signal.SIGKILL)
            consumer.wait()
        if not notes.read_bytes().endswith(b"\n"):  # killed while noting: end the torn line
            with notes.open("ab") as file:
                file.write(b"\n")

    committed = committed_bodies(notes)

    for domain, messages in published.items():
        assert [body for body in committed if f'"{domain}.' in body] == [
            m.body.decode() for m in messages
        ]
    assert log.lag("kpi") == {"card": 0, "user": 0}


def committed_bodies(notes: Path) -> list[str]:
    runs: list[list[tuple[list[str], bool]]] = []
    for line in notes.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # torn by a kill: that batch was not committed yet
        if "started" in entry:
            runs.append([])
        elif "fetched" in entry:
            runs[-1].append((entry["fetched"], False))
        elif "committed" in entry:
            runs[-1][-1] = (runs[-1][-1][0], True)
    committed: list[str] = []
    for number, run in enumerate(runs):
        later = {
            body for later_run in runs[number + 1 :] for batch, _ in later_run for body in batch
        }
        for bodies, done in run:
            if done or bodies[0] not in later:
                committed += bodies
    return committed


def started(notes: Path, runs: int) -> bool:
    return notes.exists() and notes.read_text().count('"started"') >= runs


def wait_for(condition: Callable[[], bool], timeout: float = 10, required: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            assert not required, "timed out"
            return
        time.sleep(0.01)


RESTLESS_PUBLISHER = """
import json, sys
from pathlib import Path
from factflow.transport.base import Outgoing
from factflow.transport.log import LogTransport
log, name = LogTransport(Path(sys.argv[1])), sys.argv[2]
for start in range(0, 10**9, 500):
    log.publish([
        Outgoing(type="card.card_issued", id=f"{name}-{n}",
                 body=json.dumps({"p": name, "n": n, "pad": "x" * 200}).encode())
        for n in range(start, start + 500)
    ])
    if start == 0:
        print("published", flush=True)
"""


def test_publishers_killed_mid_stream_never_corrupt_the_log(log: LogTransport) -> None:
    chance = random.Random(7)
    subscription = log.subscribe("kpi", ["card.card_issued"])
    received: list[bytes] = []
    for name in ("a", "b", "c"):
        publisher = subprocess.Popen(
            [sys.executable, "-c", RESTLESS_PUBLISHER, str(log.path), name],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert publisher.stdout is not None
            assert publisher.stdout.readline() == "published\n"
            time.sleep(chance.uniform(0.05, 0.2))
            received += subscription.fetch(10_000, 0)  # reading while the tail is being written
        finally:
            publisher.kill()
            publisher.wait()
            if publisher.stdout is not None:
                publisher.stdout.close()
    last = event("card.card_issued", 1)
    log.publish([last])

    received += drain(subscription, 10_000)

    assert received[-1] == last.body
    decoded = [json.loads(body) for body in received[:-1]]  # nothing damaged or torn
    for name in ("a", "b", "c"):
        numbers = [d["n"] for d in decoded if d["p"] == name]
        assert numbers == list(range(len(numbers)))  # each publisher's events, without a gap
        assert numbers  # each got some events out before it was killed
