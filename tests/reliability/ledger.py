"""A Jepsen-style ledger: record what was published, then check the warehouse against it.

A scenario records every message it publishes, injects its fault, lets the consumer drain, and
asks the ledger for a `Verdict`: the sets **lost**, **duplicated** and **unexpected**, and the
invariants of issue 8 that failed, each with readable examples::

    from reliability.ledger import Ledger, table_checksums

    ledger = Ledger()                      # the banking app's model and event types
    ledger.record_all(messages)            # exactly what went to the transport
    ledger.record(raw, expect="dead_letter")   # or say what a message must become
    ... publish, inject the fault, run the consumer until idle ...
    verdict = ledger.check(warehouse, queue_depths={"kpi": broker.depth("kpi")})
    reliability_table.add("kill -9 before commit", verdict)   # the report's row
    verdict.assert_ok()

The unit of the ledger is a published message, by its bytes: publishing the same bytes twice is
one entry delivered twice (it must land once). Each entry is expected to **land** (valid per the
independent oracle `banking_oracle.parse_valid`) or to become a **dead letter** (invalid), unless
`record` is told otherwise (`expect="either"`: one of the two, never both).

Where an entry lands is given by its type (`BANKING_LANDINGS`): a settled transaction in
`fact_card_transaction` under its `transaction_id` (a second envelope of the same transaction is
*absorbed* by the first: insert-first), a balance update in `fact_account_balance_change` under
its envelope id, dimension events in their `__changes` table under (key, envelope id).

Invariants (the numbers of issue 8):

1. every entry is in the warehouse or among the dead letters, never both, never twice
   (lost: expected to land and did not, or expected as a dead letter and is nowhere;
   duplicated: two rows for one key, or landed and dead-lettered; unexpected: rows and dead
   letters no entry explains, or an entry that landed though it should have been refused);
2. per business key, the exact `Decimal` amount of the warehouse equals the ledger's (the
   earliest envelope by (`occurred_at`, id) wins, as insert-first keeps it);
3. every fact's and dimension's reference resolves to a dimension row, and no member stays
   inferred once its own event landed;
4. every dead letter has a reason, its raw bytes (matching its id) and an attempt count
   (`replays`, 0 until `factflow dlq replay` re-ran it); every queue given drained to zero;
5. with ``unchanged_since=table_checksums(...)`` taken before a re-run of a bootstrap or a
   replay: no table changed.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from banking_oracle import parse_valid
from factflow.model.schema import Schema
from factflow.transport.publishing import Unroutable, outgoing
from factflow.warehouse.base import DEAD_LETTERS, Warehouse
from factflow.warehouse.ddl import quote

__all__ = [
    "BANKING_LANDINGS",
    "Entry",
    "Failure",
    "Landing",
    "Ledger",
    "Verdict",
    "deliverable",
    "table_checksums",
]

Expect = Literal["landed", "dead_letter", "either"]

#: Columns whose values depend on when a row was written, not on what: left out of checksums.
VOLATILE_COLUMNS = frozenset({"updated_at", "received_at", "replayed_at"})
#: Tables left out of checksums: event counters grow with every envelope processed, by design.
VOLATILE_TABLES = frozenset({"factflow_event_stats"})
#: Columns of one table that count re-runs, by design, left out of its checksum. A dead
#: letter's attempt count (`replays`, invariant 4) goes up by one each time `factflow dlq
#: replay` re-runs it and it fails again, so a replay run twice changes it on every letter
#: still dead, and changes nothing else; with `replayed_at` (already volatile), it is the
#: record of the re-run itself, not something the re-run got wrong. Scenarios check the count
#: on its own (it must be one more for exactly the letters replayed again).
RERUN_COUNTERS: dict[str, frozenset[str]] = {DEAD_LETTERS: frozenset({"replays"})}
_EXAMPLES = 8  # examples shown per failed invariant


@dataclass(frozen=True)
class Landing:
    """Where an event type lands: `table`, under the data field `key` (None: the envelope id,
    for tables keyed by it), with the data field `amount` in the column of the same name."""

    table: str
    key: str | None = None
    amount: str | None = None
    #: The table is keyed by (`key`, event_id): each envelope is a row of its own.
    per_envelope: bool = False


BANKING_LANDINGS: dict[str, Landing] = {
    "card.transaction_settled": Landing("fact_card_transaction", "transaction_id", "amount"),
    "account.balance_updated": Landing("fact_account_balance_change", None, "balance"),
    "user.user_created": Landing("dim_user__changes", "user_id", per_envelope=True),
    "user.user_updated": Landing("dim_user__changes", "user_id", per_envelope=True),
    "account.account_opened": Landing("dim_account__changes", "account_id", per_envelope=True),
    "card.card_issued": Landing("dim_card__changes", "card_id", per_envelope=True),
    "goal.goal_created": Landing(
        "dim_goal__changes", "goal_id", "target_amount", per_envelope=True
    ),
    "goal.goal_deleted": Landing("dim_goal__changes", "goal_id", per_envelope=True),
}


@dataclass
class Entry:
    """One published message: its bytes, what could be read of it, how often it was sent."""

    raw: bytes
    expect: Expect
    id: str | None = None
    type: str | None = None
    #: The business key: the value of the landing's key field, or the envelope id.
    key: str | None = None
    amount: Decimal | None = None
    occurred_at: datetime | None = None
    copies: int = 1

    @property
    def digest(self) -> str:
        """The dead letter id factflow gives these bytes."""
        return hashlib.blake2b(self.raw, digest_size=16).hexdigest()

    @property
    def label(self) -> str:
        """How reports name it: the envelope id, or a digest of bytes without one."""
        return self.id if self.id else f"raw:{self.digest[:12]}"


@dataclass(frozen=True)
class Failure:
    """A failed invariant (1 to 5, as in issue 8) with what went wrong and examples."""

    invariant: int
    title: str
    detail: str

    def __str__(self) -> str:
        return f"invariant {self.invariant} ({self.title}): {self.detail}"


@dataclass
class Verdict:
    """What `Ledger.check` found. Sets hold entry labels (envelope ids) or row descriptions."""

    published: int
    deliveries: int
    landed: int
    dead_letters: int
    lost: set[str] = field(default_factory=set)
    duplicated: set[str] = field(default_factory=set)
    unexpected: set[str] = field(default_factory=set)
    failures: list[Failure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected or self.failures)

    @property
    def failed_invariants(self) -> list[int]:
        return sorted({f.invariant for f in self.failures})

    def assert_ok(self) -> None:
        """Raise `AssertionError` with the whole report unless every invariant held."""
        assert self.ok, str(self)

    def __str__(self) -> str:
        lines = [
            f"published {self.published} messages ({self.deliveries} sends): "
            f"{self.landed} landed, {self.dead_letters} dead letters; lost {len(self.lost)}, "
            f"duplicated {len(self.duplicated)}, unexpected {len(self.unexpected)}"
        ]
        for name in ("lost", "duplicated", "unexpected"):
            found: set[str] = getattr(self, name)
            if found:
                lines.append(f"  {name}: {_examples(sorted(found))}")
        lines += [f"  {failure}" for failure in self.failures]
        return "\n".join(lines)


class Ledger:
    """Every message a scenario published, and the check of a warehouse against them.

    Args:
        schema: the model (for invariant 3); the banking app's by default.
        landings: where each event type lands; `BANKING_LANDINGS` by default. A valid message
            of a type missing here may land anywhere: only its dead letter is checked.
    """

    def __init__(
        self, schema: Schema | None = None, landings: Mapping[str, Landing] | None = None
    ) -> None:
        if schema is None:
            from factflow.examples.banking import app

            schema = app.schema
        self.schema = schema
        self.landings = dict(BANKING_LANDINGS if landings is None else landings)
        self.entries: dict[bytes, Entry] = {}

    def record(self, raw: bytes, *, expect: Expect | None = None) -> Entry:
        """Note that `raw` was published (once more, if it was before).

        `expect` is what it must become; by default "landed" when the oracle finds it valid,
        else "dead_letter". Recording the same bytes with another `expect` keeps the first.
        """
        raw = bytes(raw)
        entry = self.entries.get(raw)
        if entry is not None:
            entry.copies += 1
            return entry
        valid = parse_valid(raw)
        entry = Entry(raw, expect or ("landed" if valid is not None else "dead_letter"))
        envelope = _loose_json(raw)
        if isinstance(envelope.get("id"), str):
            entry.id = envelope["id"]
        if isinstance(envelope.get("type"), str):
            entry.type = envelope["type"]
        if valid is not None:
            entry.occurred_at = valid.occurred_at
            landing = self.landings.get(valid.type)
            if landing is not None:
                entry.key = valid.id if landing.key is None else valid.data[landing.key]
                if landing.amount is not None:
                    entry.amount = _decimal(valid.data.get(landing.amount))
        self.entries[raw] = entry
        return entry

    def record_all(self, messages: Iterable[bytes], *, expect: Expect | None = None) -> None:
        """`record` each of `messages`."""
        for raw in messages:
            self.record(raw, expect=expect)

    def check(
        self,
        warehouse: Warehouse,
        *,
        queue_depths: Mapping[str, int] | None = None,
        broker_dead_letters: Iterable[bytes] = (),
        unchanged_since: Mapping[str, str] | None = None,
    ) -> Verdict:
        """The verdict on `warehouse` (facts, dimension changes and dead letters) after the
        scenario.

        Args:
            queue_depths: messages left per queue (or stream); each must be 0 (invariant 4).
            broker_dead_letters: bodies the broker set aside itself (RabbitMQ's
                ``<group>.dead-letter`` queue after the delivery limit): they count as dead
                letters, without the warehouse's reason and attempt count.
            unchanged_since: `table_checksums` taken earlier; every table must still match
                (invariant 5: re-running a bootstrap or replay changed nothing).
        """
        return _Check(self, warehouse, frozenset(map(bytes, broker_dead_letters))).run(
            queue_depths or {}, unchanged_since
        )


def deliverable(
    messages: Iterable[bytes], domains: Iterable[str] = ("user", "account", "card", "goal")
) -> list[bytes]:
    """The `messages` a consumer group of `domains` receives through a routing transport
    (RabbitMQ, NATS, the embedded log): those whose type and id can be read, of those domains.
    The others are refused by the publisher or go to no consumer: not the group's to keep.
    """
    wanted, refused = set(domains), list[Unroutable]()
    return [m.body for m in outgoing(messages, refused) if m.domain in wanted]


def table_checksums(warehouse: Warehouse, schema: Schema | None = None) -> dict[str, str]:
    """A digest per table of the model and of the dead letters, of every row in a stable order,
    leaving out the columns that say when a row was written (`VOLATILE_COLUMNS`) and the
    dead letters' attempt count (`RERUN_COUNTERS`).

    Equal checksums before and after a re-run mean that it changed nothing (invariant 5).
    """
    if schema is None:
        from factflow.examples.banking import app

        schema = app.schema
    names = [t.name for t in schema.tables()] + [DEAD_LETTERS]
    sums = {}
    for name in names:
        if name in VOLATILE_TABLES:
            continue
        result = warehouse.query(f"SELECT * FROM {quote(name)}")
        left_out = VOLATILE_COLUMNS | RERUN_COUNTERS.get(name, frozenset())
        kept = [i for i, c in enumerate(result.columns) if c not in left_out]
        rows = sorted(repr(tuple(_canonical(row[i]) for i in kept)) for row in result.rows)
        digest = hashlib.sha256()
        for row in rows:
            digest.update(row.encode() + b"\n")
        sums[name] = f"{len(rows)}:{digest.hexdigest()[:16]}"
    return sums


class _Check:
    """One run of `Ledger.check`."""

    def __init__(self, ledger: Ledger, warehouse: Warehouse, broker_dead: frozenset[bytes]):
        self.ledger, self.warehouse, self.broker_dead = ledger, warehouse, broker_dead
        self.entries = list(ledger.entries.values())
        self.verdict = Verdict(
            published=len(self.entries),
            deliveries=sum(e.copies for e in self.entries),
            landed=0,
            dead_letters=0,
        )

    def fail(self, invariant: int, title: str, problems: list[str]) -> None:
        if problems:
            self.verdict.failures.append(
                Failure(invariant, title, f"{len(problems)}: {_examples(problems)}")
            )

    def run(self, depths: Mapping[str, int], unchanged_since: Mapping[str, str] | None) -> Verdict:
        letters = self.warehouse.dead_letters()
        dead_raws = {d.raw for d in letters} | self.broker_dead
        rows = self._landed_rows()
        self._accounting(rows, dead_raws)
        self._unexplained(rows, dead_raws)
        self._amounts(rows, dead_raws)
        self._references()
        self._dead_letters(letters, depths)
        if unchanged_since is not None:
            now = table_checksums(self.warehouse, self.ledger.schema)
            self.fail(
                5,
                "a re-run changed tables",
                [
                    f"{t}: {unchanged_since.get(t)} -> {now.get(t)}"
                    for t in sorted(set(now) | set(unchanged_since))
                    if now.get(t) != unchanged_since.get(t)
                ],
            )
        return self.verdict

    # -- invariant 1 -----------------------------------------------------------------------

    def _landed_rows(self) -> dict[str, dict[str, list[tuple[str, Decimal | None]]]]:
        """Per landing table: business key → its rows as (event_id, amount)."""
        tables: dict[str, dict[str, list[tuple[str, Decimal | None]]]] = {}
        for landing in self.ledger.landings.values():
            if landing.table in tables:
                continue  # per table one key and amount (dimension events share a table)
            key = "event_id" if landing.key is None else landing.key
            amount = quote(landing.amount) if landing.amount and not landing.per_envelope else None
            result = self.warehouse.query(
                f"SELECT {quote(key)}, event_id, {amount or 'NULL'} FROM {quote(landing.table)}"
            )
            by_key: dict[str, list[tuple[str, Decimal | None]]] = defaultdict(list)
            for row_key, event_id, value in result.rows:
                by_key[str(row_key)].append((str(event_id), value))
            tables[landing.table] = by_key
        return tables

    def _where(self, entry: Entry) -> Landing | None:
        return self.ledger.landings.get(entry.type or "") if entry.key is not None else None

    def _accounting(
        self, rows: Mapping[str, Mapping[str, list[tuple[str, Decimal | None]]]], dead: set[bytes]
    ) -> None:
        verdict, misplaced, doubled = self.verdict, [], []
        for entry in self.entries:
            landing = self._where(entry)
            in_dead = entry.raw in dead
            landed = both = False
            if landing is not None and entry.key is not None:
                found = rows[landing.table].get(entry.key, [])
                if landing.per_envelope:
                    found = [r for r in found if r[0] == entry.id]
                # Its own row (under its id, with its amount: the same id with another amount
                # is someone else's payload), or absorbed by another envelope of the same
                # business key (insert-first), which only a valid, kept message can be.
                own = any(r[0] == entry.id and _same(r[1], entry.amount) for r in found)
                absorbed = any(r[0] != entry.id for r in found)
                landed = own or (absorbed and not in_dead and entry.expect != "dead_letter")
                both = own and in_dead
                if len(found) > 1:
                    verdict.duplicated.add(entry.label)
                    doubled.append(f"{entry.label}: {len(found)} rows in {landing.table}")
            verdict.landed += landed
            verdict.dead_letters += in_dead
            if both:
                verdict.duplicated.add(entry.label)
                doubled.append(f"{entry.label}: in {landing and landing.table} and dead-lettered")
            elif entry.expect == "landed" and not landed:
                verdict.lost.add(entry.label)
                if in_dead:
                    misplaced.append(f"{entry.label}: dead-lettered though valid")
            elif entry.expect == "dead_letter" and landed:
                verdict.unexpected.add(entry.label)
                misplaced.append(f"{entry.label}: landed though it should be a dead letter")
            elif not in_dead and (entry.expect == "dead_letter" or not landed):
                verdict.lost.add(entry.label)  # nowhere at all
        self.fail(1, "in the warehouse or a dead letter, never both, never twice", doubled)
        self.fail(1, "where it belongs", misplaced)
        if verdict.lost:
            self.fail(1, "lost", sorted(verdict.lost))

    def _unexplained(
        self, rows: Mapping[str, Mapping[str, list[tuple[str, Decimal | None]]]], dead: set[bytes]
    ) -> None:
        """Rows and dead letters that no entry of the ledger explains."""
        known: dict[str, set[str]] = defaultdict(set)  # table → keys (or event ids)
        for entry in self.entries:
            landing = self._where(entry)
            if landing is not None and entry.key is not None:
                known[landing.table].add(entry.key)
                if landing.per_envelope and entry.id is not None:
                    known[landing.table + "#"].add(entry.id)
        strays = []
        for table, by_key in rows.items():
            per_envelope = any(
                item.per_envelope and item.table == table for item in self.ledger.landings.values()
            )
            for key, found in by_key.items():
                for event_id, _ in found:
                    if key not in known[table] or (
                        per_envelope and event_id not in known[table + "#"]
                    ):
                        strays.append(f"{table}: key {key!r}, event {event_id!r}")
        raws = {e.raw for e in self.entries}
        strays += [
            f"dead letter {raw[:60]!r}"
            for raw in sorted(dead - raws)
            if raw not in self.broker_dead
        ]
        strays += [f"broker dead letter {raw[:60]!r}" for raw in sorted(self.broker_dead - raws)]
        self.verdict.unexpected.update(strays)
        self.fail(1, "rows and dead letters nobody published", strays)

    # -- invariant 2 -----------------------------------------------------------------------

    def _amounts(
        self, rows: Mapping[str, Mapping[str, list[tuple[str, Decimal | None]]]], dead: set[bytes]
    ) -> None:
        winners: dict[tuple[str, str], list[Entry]] = defaultdict(list)
        for entry in self.entries:
            landing = self._where(entry)
            if (
                landing is None
                or landing.amount is None
                or landing.per_envelope
                or entry.expect == "dead_letter"
                or entry.raw in dead
            ):
                continue
            winners[landing.table, entry.key or ""].append(entry)
        wrong = []
        for (table, key), candidates in sorted(winners.items()):
            first = min(candidates, key=lambda e: (e.occurred_at or datetime.min, e.id or ""))
            stored = [value for _, value in rows[table].get(key, [])]
            total = sum((Decimal(v) for v in stored if v is not None), Decimal(0))
            if not stored or first.amount is None or total != first.amount:
                wrong.append(f"{table} {key!r}: warehouse {total} ({len(stored)} rows), "
                             f"ledger {first.amount}")  # fmt: skip
        self.fail(2, "exact sums per business key", wrong)

    # -- invariant 3 -----------------------------------------------------------------------

    def _references(self) -> None:
        schema, problems = self.ledger.schema, []
        tables = [(f.name, f.references) for f in schema.facts]
        tables += [(d.current.name, d.references) for d in schema.dimensions]
        for table, references in tables:
            for column, dimension in references.items():
                key = quote(schema.dimension(dimension).key)
                count = self._count(
                    f"SELECT count(*) FROM {quote(table)} AS t WHERE t.{quote(column)} IS NOT NULL "
                    f"AND NOT EXISTS (SELECT 1 FROM {quote(dimension)} AS d "
                    f"WHERE d.{key} = t.{quote(column)})"
                )
                if count:
                    problems.append(f"{table}.{column}: {count} rows without a {dimension} row")
        for dim in schema.dimensions:
            key = quote(dim.key)
            count = self._count(
                f"SELECT count(*) FROM {quote(dim.current.name)} AS d WHERE d.inferred "
                f"AND EXISTS (SELECT 1 FROM {quote(dim.changes.name)} AS c WHERE c.{key} = d.{key})"
            )
            if count:
                problems.append(f"{dim.name}: {count} members still inferred after their event")
        self.fail(3, "dimension references resolve", problems)

    def _count(self, sql: str) -> int:
        return int(self.warehouse.query(sql).rows[0][0])

    # -- invariant 4 -----------------------------------------------------------------------

    def _dead_letters(self, letters: list[Any], depths: Mapping[str, int]) -> None:
        problems = []
        for letter in letters:
            name = letter.event_id or letter.id
            if not (letter.reason or "").strip():
                problems.append(f"{name}: no reason")
            if (
                letter.raw is None
                or hashlib.blake2b(letter.raw, digest_size=16).hexdigest() != letter.id
            ):
                problems.append(f"{name}: raw bytes missing or not those of its id")
            if letter.replays is None or letter.replays < 0:
                problems.append(f"{name}: no attempt count")
        self.fail(4, "dead letters keep reason, raw bytes and attempts", problems)
        self.fail(
            4,
            "queues drain to zero",
            [f"{queue}: {depth} left" for queue, depth in sorted(depths.items()) if depth],
        )


def _loose_json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _same(stored: object, amount: Decimal | None) -> bool:
    return amount is None or stored is None or Decimal(str(stored)) == amount


def _canonical(value: object) -> object:
    if isinstance(value, Decimal):
        return value.normalize()
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    return value


def _examples(items: list[str]) -> str:
    shown = "; ".join(items[:_EXAMPLES])
    return shown + (f"; … {len(items) - _EXAMPLES} more" if len(items) > _EXAMPLES else "")
