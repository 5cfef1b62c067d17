"""NATS JetStream as a transport: streams per domain, a durable pull consumer per group.

What the transport keeps on the server, for the URL ``nats://host:4222?prefix=acme`` (without a
prefix, subjects and names start at the domain)::

    subject   acme.card.transaction_settled    an event's subject is its `type`
    stream    acme_card                        one per domain (file storage), subjects acme.card.>
    consumer  acme_card / kpi                  one durable pull consumer per consumer group and
                                               domain, named after the group

Both `publish` (for the domains it publishes to) and `subscribe` create the streams, and
`subscribe` the consumers, idempotently: an existing stream of that name is left alone when it
has the subject, and otherwise gets it added. A new consumer group starts at the beginning of
each stream. Other programs may publish plain JetStream messages to the same subjects; they are
read the same way.

Delivery, and what survives what:

- `publish` returns once JetStream acknowledged every message: stored by the server (by a quorum
  for replicated streams). A single server's file store syncs to disk every `sync_interval`
  (2 minutes by default; `sync_always` in the server configuration syncs every write). The
  header ``Nats-Msg-Id`` carries the envelope id, so JetStream drops a republished envelope
  within its duplicate window (2 minutes by default).
- Several processes reading as one group pull from the same durable consumer and share the
  load. Every message is acknowledged one by one (`AckPolicy.EXPLICIT`) at `commit`, never
  before; what a process fetched and did not commit is handed out again: at once after a clean
  `close` (negatively acknowledged), after `ack_wait` seconds after a crash.
- A consumer reads every type of its domain (filter ``<domain>.>``, so a group's consumer never
  has to change when its app's event types do). `<domain>.*` returns them all, unknown types
  included, so the runtime can set those aside; with exact types only, messages of other types
  are acknowledged without being returned, with the next `commit` (or at once by a fetch that
  returns nothing): they are not this group's, and the group will not see them later either.
- A message delivered `max_deliver` times without being acknowledged (a poison message that kills
  the consumer process each time) is no longer delivered to that group; JetStream publishes the
  advisory ``$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.<stream>.<consumer>``, which monitoring
  should watch. The message stays in the stream (``nats stream get``) to be inspected and
  republished. Bad *input* never gets there: the runtime turns it into a dead letter and
  acknowledges it. So that such a message uses up only its own deliveries, a message delivered
  unacknowledged twice before comes alone, in a fetch marked `suspect` (written and committed by
  itself), and a consumer is pulled one message at a time at first and after a suspect message,
  until another comes: a process that dies on a suspect message held no other.
- The client reconnects by itself. Meanwhile `fetch` and `commit` raise `TransportUnavailable`
  (so the runtime backs off and subscribes again), as does any call the server does not answer
  within `timeout` seconds.
"""

# The implementation, one job per private module: `_transport` (the connection, streams and
# synchronous API), `_publish` (publishing and counting acknowledgements), `_subscription`
# (fetch, commit, close) over `_consumer` (one domain's durable consumer and its pulls), `_loop`
# (the event-loop thread) and `_config` (names on the server, options in the URL).

from factflow.transport.nats._subscription import NatsSubscription
from factflow.transport.nats._transport import NatsTransport

__all__ = ["NatsSubscription", "NatsTransport"]
