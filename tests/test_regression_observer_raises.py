"""An observer that raises turns a call that succeeded into an error (and skips the rest of the
bookkeeping: the attempt's result - for a stream, an open HTTP response - is dropped unclosed)."""

import notdiamond
from tests.fakes import USER, FakeProvider


def test_a_failing_observer_does_not_fail_the_call() -> None:
    fake = FakeProvider()
    client = fake.openai()

    def observer(event: object) -> None:
        raise RuntimeError("metrics backend down")

    with notdiamond.init(client, models=["openai/gpt-4o"], observer=observer):
        result = client.chat.completions.create(model="notdiamond", messages=USER)
    assert result.choices[0].message.content == "hi"
