"""How the transport names things on the server, and reads its options from the URL."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import TypeVar

from factflow._urls import pop_query_parameter, redact
from factflow.errors import ConfigurationError

__all__ = ["INSTALL", "PREFIX", "domain_of", "durable_name", "stream_name", "url_option"]

T = TypeVar("T")

INSTALL = "pip install 'factflow[nats]'"
PREFIX = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\Z")
_DOMAIN = re.compile(r"[A-Za-z0-9_-]+\Z")
_TYPE = re.compile(r"([A-Za-z0-9_-]+)(\.[^\s.*>]+)+\Z")  # a NATS subject of two tokens or more
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_-]")


def stream_name(prefix: str, domain: str) -> str:
    """The stream of `domain`, named after `prefix` (its dots made underscores) and `domain`."""
    return f"{prefix.replace('.', '_')}_{domain}" if prefix else domain


def durable_name(group: str) -> str:
    """A consumer name NATS accepts, distinct for distinct groups."""
    if not group:
        raise ConfigurationError("consumer group: must not be empty, e.g. 'kpi'")
    name = _NOT_IN_NAME.sub("_", group)
    if name != group:  # e.g. `kpi.eu` and `kpi_eu` must not share a consumer
        name += "-" + hashlib.sha256(group.encode()).hexdigest()[:8]
    return name


def domain_of(event_type: str) -> str:
    """The domain of `event_type`, or of a pattern `<domain>.*`."""
    domain = event_type.partition(".")[0]
    if not _DOMAIN.match(domain) or not (event_type == f"{domain}.*" or _TYPE.match(event_type)):
        raise ValueError(
            f"event type {event_type!r}: must be <domain>.<event_name>, the domain made of letters,"
            " digits, `_` or `-` (it names a stream) and no whitespace, `*` or `>` (it is the NATS"
            " subject), e.g. 'card.card_issued'"
        )
    return domain


def url_option(
    url: str, name: str, given: T | None, parse: Callable[[str], T]
) -> tuple[str, T | None]:
    """`url` without its query parameter `name`, and that parameter parsed (else `given`)."""
    url, text = pop_query_parameter(url, name)
    if text is None:
        return url, given
    if given is not None:
        raise ConfigurationError(
            f"NATS URL {redact(url)!r}: `{name}` is given both in the URL and as an argument;"
            " keep one"
        )
    try:
        return url, parse(text)
    except ValueError:
        raise ConfigurationError(f"NATS URL: `{name}={text}` is not a valid value") from None
