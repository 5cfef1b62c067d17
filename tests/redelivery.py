"""Reading a subscription after messages were returned to it: the suspect ones alone, then the
rest in batches (the transports' side of issue 8, scenario 7)."""

from factflow.transport.base import Fetched, Subscription


def read_suspects_then_the_rest(
    subscription: Subscription, suspects: int, rest: int, wait: float
) -> tuple[list[bytes], list[bytes]]:
    """Fetch and commit `suspects` messages, each alone and marked suspect, then `rest` messages
    in fetches not marked; both lists of bodies, in the order fetched."""
    alone: list[bytes] = []
    for _ in range(suspects):
        fetched = subscription.fetch(100, wait)
        assert isinstance(fetched, Fetched) and fetched.suspect and len(fetched) == 1
        alone += fetched
        subscription.commit()
    batched: list[bytes] = []
    while len(batched) < rest and (fetched := subscription.fetch(100, wait)):
        assert isinstance(fetched, Fetched) and not fetched.suspect
        batched += fetched
        subscription.commit()
    return alone, batched
