from datetime import UTC, datetime, timedelta
from decimal import Decimal

import msgspec
import pytest

from factflow import DecodeError, Event, Money, UnknownEventError, event
from factflow.model.decoding import EventDecoder


@event("card.transaction_settled")
class Settled(Event):
    transaction_id: str
    amount: Money
    count: int = 0


decoder = EventDecoder([Settled])


def message(data: object, **envelope: object) -> bytes:
    fields: dict[str, object] = {
        "id": "e-1",
        "type": "card.transaction_settled",
        "source": "card-service",
        "occurred_at": "2026-03-01T12:34:56.123Z",
        "version": 1,
        "data": data,
    }
    fields.update(envelope)
    return msgspec.json.encode(fields)


def problem(raw: bytes) -> str:
    with pytest.raises((DecodeError, UnknownEventError)) as caught:
        decoder.decode(raw)
    return str(caught.value)


def test_a_valid_message_decodes_to_a_typed_envelope_with_exact_money() -> None:
    decoded = decoder.decode(message({"transaction_id": "t-1", "amount": "-130.00"}))
    assert decoded.id == "e-1"
    assert decoded.occurred_at == datetime(2026, 3, 1, 12, 34, 56, 123000, tzinfo=UTC)
    assert decoded.data == Settled(transaction_id="t-1", amount=Money("-130.00"))
    assert isinstance(decoded.data.amount, Decimal)


def test_timestamps_keep_their_offset() -> None:
    decoded = decoder.decode(
        message({"transaction_id": "t", "amount": "1"}, occurred_at="2026-03-01T14:00:00+02:00")
    )
    assert decoded.occurred_at.utcoffset() == timedelta(hours=2)
    assert decoded.occurred_at == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_bad_decimal_is_rejected_naming_the_field_and_the_value() -> None:
    reason = problem(message({"transaction_id": "t", "amount": "abc"}))
    assert reason.startswith("card.transaction_settled: `data.amount`")
    assert 'got "abc"' in reason


def test_an_amount_sent_as_a_json_number_is_rejected_because_it_is_a_float_on_the_wire() -> None:
    assert "got 1.5" in problem(message({"transaction_id": "t", "amount": 1.5}))


def test_not_a_number_is_not_an_amount() -> None:
    assert 'got "NaN"' in problem(message({"transaction_id": "t", "amount": "NaN"}))


def test_a_wrong_type_names_the_field_the_expected_type_and_the_value() -> None:
    reason = problem(message({"transaction_id": 5, "amount": "1"}))
    assert reason == "card.transaction_settled: `data.transaction_id` must be str, got 5"


def test_a_missing_field_is_named() -> None:
    reason = problem(message({"amount": "1"}))
    assert reason == "card.transaction_settled: `data.transaction_id` is required but missing"


def test_a_timestamp_without_offset_is_rejected() -> None:
    reason = problem(
        message({"transaction_id": "t", "amount": "1"}, occurred_at="2026-03-01T12:00:00")
    )
    assert "`occurred_at`" in reason
    assert '"2026-03-01T12:00:00"' in reason


def test_an_unparseable_timestamp_is_rejected_with_its_value() -> None:
    reason = problem(message({"transaction_id": "t", "amount": "1"}, occurred_at="yesterday"))
    assert 'got "yesterday"' in reason


def test_not_json_is_rejected() -> None:
    assert problem(b"{nope").startswith("not a valid JSON envelope")


def test_a_missing_envelope_field_is_named() -> None:
    raw = msgspec.json.encode({"id": "1", "type": "card.transaction_settled", "version": 1})
    assert "`source` is required but missing" in problem(raw)


def test_an_unknown_type_is_reported_as_such() -> None:
    assert "unknown event type 'card.exploded'" in problem(message({}, type="card.exploded"))


def test_an_unhandled_version_lists_the_handled_ones() -> None:
    reason = problem(message({"transaction_id": "t", "amount": "1"}, version=2))
    assert "version 2 is not handled (handled versions: 1)" in reason


def test_unknown_payload_fields_are_accepted_because_adding_optional_fields_is_allowed() -> None:
    decoded = decoder.decode(message({"transaction_id": "t", "amount": "1", "new_field": True}))
    assert decoded.data.transaction_id == "t"


def test_decode_batch_separates_good_messages_from_dead_letters_with_their_raw_bytes() -> None:
    good = message({"transaction_id": "t", "amount": "1"})
    bad = message({"transaction_id": "t", "amount": "x"}, id="e-bad")
    envelopes, raws, dead = decoder.decode_batch([good, b"garbage", bad])
    assert [e.id for e in envelopes] == ["e-1"]
    assert raws == [good]
    assert [d.raw for d in dead] == [b"garbage", bad]
    assert dead[1].event_id == "e-bad"
    assert dead[1].event_type == "card.transaction_settled"
    assert dead[0].event_type is None
