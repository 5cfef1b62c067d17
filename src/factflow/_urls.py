"""Warehouse URLs: options factflow reads from them, and their safe spelling in messages."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode, urlsplit

__all__ = ["pop_query_parameter", "redact", "redact_text"]

_SECRET_PARAMETERS = frozenset({"password", "sslpassword"})


def pop_query_parameter(url: str, name: str) -> tuple[str, str | None]:
    """The URL without the query parameter `name`, and that parameter's value (None if absent).

    `factflow` options such as `?schema=kpi` travel in the URL users give, but the database
    driver would refuse them, so they are taken out before connecting.

        >>> pop_query_parameter("postgresql://db/test?schema=kpi&sslmode=require", "schema")
        ('postgresql://db/test?sslmode=require', 'kpi')
    """
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    values = [value for key, value in pairs if key == name]
    if not values:
        return url, None
    rest = urlencode([(key, value) for key, value in pairs if key != name], quote_via=quote)
    return parts._replace(query=rest).geturl(), values[-1]


def redact(url: str) -> str:
    """The URL with its password (in the user part or the query) replaced by ***.

    >>> redact("postgresql://kpi:s3cret@db/test?sslmode=require")
    'postgresql://kpi:***@db/test?sslmode=require'
    """
    parts = urlsplit(url)
    secret_query = any(key in _SECRET_PARAMETERS for key, _ in parse_qsl(parts.query))
    if parts.password is None and not secret_query:
        return url  # untouched: rebuilding would turn `duckdb:///x` into `duckdb:/x`
    if parts.password is not None:
        user, _, host = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{user.partition(':')[0]}:***@{host}")
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(key in _SECRET_PARAMETERS for key, _ in pairs):
        hidden = [(key, "***" if key in _SECRET_PARAMETERS else value) for key, value in pairs]
        parts = parts._replace(query=urlencode(hidden, quote_via=quote, safe="*"))
    return parts.geturl()


def redact_text(text: str, url: str) -> str:
    """`text` (say, a driver's error message) with every password of `url` replaced by ***."""
    parts = urlsplit(url)
    secrets = [parts.password] if parts.password else []
    secrets += [
        value
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key in _SECRET_PARAMETERS and value
    ]
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
