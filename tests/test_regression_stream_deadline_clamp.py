"""A streamed call under a generous deadline: the model's own timeout is the model's fault."""

import openai
import pytest

import notdiamond
from tests.fakes import USER, FakeProvider, SleepRecorder, read_timeout


def _run(stream: bool):
    fake, sleeps = FakeProvider(), SleepRecorder()
    client = fake.openai()
    manager = notdiamond.init(
        client,
        models=["openai/gpt-4o"],
        timeout=5.0,
        deadline=60.0,
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=1),
        clock=sleeps.clock,
        sleep=sleeps,
    )
    fake.script("openai/gpt-4o", read_timeout())
    try:
        with pytest.raises(openai.APITimeoutError) as info:
            client.chat.completions.create(model="notdiamond", messages=USER, stream=stream)
        return info.value, manager.health()["openai/gpt-4o"].state
    finally:
        manager.close()


@pytest.mark.parametrize("stream", [False, True])
def test_model_timeout_far_from_deadline_is_not_deadline_exceeded(stream: bool) -> None:
    error, state = _run(stream)
    assert not isinstance(error, notdiamond.DeadlineExceeded), "deadline 60 s, only 0 s elapsed"
    assert state == "open", "a model timeout must count against the breaker"


def test_stream_model_timeout_counts_against_breaker() -> None:
    _, state = _run(True)
    assert state == "open"
