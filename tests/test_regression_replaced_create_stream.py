"""A client whose create was replaced by per-call instrumentation (issue 7): a streamed call's
first chunk is not part of the attempt (CallState is built with stream=False in _replaced.entry),
so a stream that ends before its first chunk reaches the caller instead of falling back."""

import notdiamond
from tests.fakes import DONE_EVENT, USER, FakeProvider, sse


def test_stream_through_replaced_create_falls_back_before_first_chunk() -> None:
    fake = FakeProvider()
    client = fake.openai()
    original = client.chat.completions.create
    seen = []

    def instrumented(*args, **kwargs):  # e.g. an APM's per-call wrapper
        seen.append(kwargs.get("model"))
        return original(*args, **kwargs)

    client.chat.completions.create = instrumented  # type: ignore[method-assign]
    fake.script("openai/model-a", sse(first=DONE_EVENT))  # ends before its first chunk
    with notdiamond.init(client, models=["openai/model-a", "openai/model-b"]):
        stream = client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert seen == ["model-a", "model-b"], seen
    assert text == "hi"


def test_same_without_replacement_for_comparison() -> None:
    fake = FakeProvider()
    client = fake.openai()
    fake.script("openai/model-a", sse(first=DONE_EVENT))
    with notdiamond.init(client, models=["openai/model-a", "openai/model-b"]):
        stream = client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert fake.keys() == ["openai/model-a", "openai/model-b"]
    assert text == "hi"
