"""The README's example app is real code: it runs, and counts a re-published transaction once."""

import re
from pathlib import Path

from factflow import App
from factflow.testing import Harness, envelope

README = Path(__file__).parent.parent / "README.md"


def test_the_readme_example_declares_a_working_app() -> None:
    [example] = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    namespace: dict[str, object] = {}
    exec(compile(example, "README.md", "exec"), namespace)
    app = namespace["app"]
    assert isinstance(app, App)
    harness = Harness(app)
    data = {"transaction_id": "t-1", "user_id": "u-1", "amount": "-130.00", "currency": "DKK"}
    harness.deliver(
        [
            envelope("card.transaction_settled", data, id="live"),
            envelope("card.transaction_settled", data, id="replayed"),
        ]
    )
    harness.assert_facts(namespace["CardTransaction"], [{"transaction_id": "t-1", "amount": -130}])
    harness.assert_dimension(namespace["User"], [{"user_id": "u-1", "inferred": True}])
