"""Every error factflow raises, with what the runtime should do about it.

```
FactflowError
├── DeclarationError          a model, pipeline or app is declared wrongly (fix the code)
├── ConfigurationError        a URL, flag or setting is wrong (fix the command line or config)
├── TerminalError             retrying cannot help: the input is set aside as a dead letter
│   ├── DecodeError           an envelope or payload breaks the event contract
│   ├── UnknownEventError     no pipeline handles this `type` / `version`
│   └── RejectedEvent         a pipeline step refused one event
└── TransientError            retrying may help: connection lost, database unavailable
    ├── TransportUnavailable
    └── WarehouseUnavailable
```

The runtime retries `TransientError` with backoff and never acknowledges in the meantime; it turns
`TerminalError` into a dead letter and goes on.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DeclarationError",
    "DecodeError",
    "FactflowError",
    "RejectedEvent",
    "TerminalError",
    "TransientError",
    "TransportUnavailable",
    "UnknownEventError",
    "WarehouseUnavailable",
]


class FactflowError(Exception):
    """Root of every error factflow raises on purpose."""


class DeclarationError(FactflowError, TypeError):
    """An event, fact, dimension, pipeline or app is declared in a way factflow cannot use."""


class ConfigurationError(FactflowError, ValueError):
    """A location, flag or setting is missing or malformed."""


class TerminalError(FactflowError):
    """Retrying cannot help; the input concerned becomes a dead letter."""


class DecodeError(TerminalError, ValueError):
    """An envelope or its payload does not follow the event contract."""


class UnknownEventError(TerminalError, LookupError):
    """No pipeline of the app handles this event `type` and `version`."""


class RejectedEvent(TerminalError):
    """Raised by a pipeline step to set one event aside with a reason."""


class TransientError(FactflowError):
    """Retrying later may succeed; nothing must be acknowledged meanwhile."""


class TransportUnavailable(TransientError, ConnectionError):
    """The transport cannot be reached or dropped the connection."""


class WarehouseUnavailable(TransientError, ConnectionError):
    """The warehouse cannot be reached or refused the transaction for a passing reason."""
