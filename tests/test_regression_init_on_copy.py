"""init() on a with_options copy of a managed client manages the copy alone: the original stays
with its own manager, whose close() restores it (it used to be taken over through the shared slot)."""

import openai

import notdiamond
from tests.fakes import USER, FakeProvider


def test_init_on_a_copy_leaves_the_original_alone() -> None:
    fake = FakeProvider()
    client = fake.openai()
    m1 = notdiamond.init(client, models=["openai/model-a"])
    copy = client.with_options(timeout=5.0)
    m2 = notdiamond.init(copy, models=["openai/model-b"])
    try:
        client.chat.completions.create(model="notdiamond", messages=USER)
        assert fake.keys() == ["openai/model-a"], "the original still belongs to m1"
    finally:
        m1.close()
        try:
            assert type(client) is openai.OpenAI, "m1.close() must restore the client it patched"
            assert "_notdiamond_slot" not in vars(client)
        finally:
            m2.close()
