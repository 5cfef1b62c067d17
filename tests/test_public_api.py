import factflow


def test_all_lists_exactly_the_public_names_sorted() -> None:
    public = {name for name in vars(factflow) if not name.startswith("_")} - {"annotations"}
    submodules = {
        "errors",
        "model",
        "pipeline",
        "testing",
        "insight",
        "runtime",
        "warehouse",
        "transport",
        "examples",
        "bootstrap",
        "cli",
        "scaffold",
    }
    assert set(factflow.__all__) == public - submodules
    assert factflow.__all__ == sorted(factflow.__all__)


def test_every_error_derives_from_the_root_error() -> None:
    from factflow import errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), factflow.FactflowError)
