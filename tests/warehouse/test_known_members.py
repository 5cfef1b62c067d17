"""The writer ensures only dimension keys it does not know exist, and forgets none it needs."""

from factflow.warehouse.members import KnownMembers


def test_only_keys_not_known_are_left_to_ensure() -> None:
    members = KnownMembers()
    members.add("dim_card", {"c-1", "c-2"})
    assert members.unknown("dim_card", {"c-1", "c-3"}) == {"c-3"}
    assert members.unknown("dim_user", {"c-1"}) == {"c-1"}


def test_past_the_bound_keys_are_no_longer_remembered() -> None:
    members = KnownMembers(limit=3)
    members.add("dim_card", {"c-1", "c-2"})
    members.add("dim_card", {"c-3", "c-4", "c-5"})
    assert (
        len(
            {"c-1", "c-2", "c-3", "c-4", "c-5"}
            - members.unknown("dim_card", {f"c-{i}" for i in range(1, 6)})
        )
        == 3
    )


def test_a_migration_forgets_every_key() -> None:
    members = KnownMembers()
    members.add("dim_card", {"c-1"})
    members.forget()
    assert members.unknown("dim_card", {"c-1"}) == {"c-1"}
