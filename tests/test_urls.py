"""Warehouse URLs: factflow's own parameters, and passwords kept out of messages."""

import pytest

from factflow._urls import pop_query_parameter, redact, redact_text


@pytest.mark.parametrize(
    ("url", "rest", "value"),
    [
        ("postgresql://db/test?schema=kpi", "postgresql://db/test", "kpi"),
        (
            "postgresql://db/test?sslmode=require&schema=bank&application_name=a%20b",
            "postgresql://db/test?sslmode=require&application_name=a%20b",
            "bank",
        ),
        ("postgresql://db/test?sslmode=require", "postgresql://db/test?sslmode=require", None),
    ],
)
def test_a_parameter_is_taken_out_of_the_url(url: str, rest: str, value: str | None) -> None:
    assert pop_query_parameter(url, "schema") == (rest, value)


def test_passwords_are_redacted_wherever_they_are_in_the_url() -> None:
    assert redact("postgresql://kpi:s3cret@db:5432/test") == "postgresql://kpi:***@db:5432/test"
    assert redact("postgresql://db/test?user=kpi&password=s3cret") == (
        "postgresql://db/test?user=kpi&password=***"
    )
    assert redact("postgresql://kpi@db/test") == "postgresql://kpi@db/test"


def test_passwords_are_redacted_from_any_text() -> None:
    url = "postgresql://kpi:s3cret@db/test?sslpassword=k3y"
    assert redact_text("failed with s3cret and k3y", url) == "failed with *** and ***"
