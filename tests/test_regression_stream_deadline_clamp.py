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


def test_a_deadline_alone_sends_a_streamed_attempt_with_the_timeout_it_cut() -> None:
    """The attempt's timeout is cut to the time left when it starts; the header wait of a sync
    stream is measured from that same instant, so a deadline alone adds no second, shorter read
    cap (a clock read later would make one, a few microseconds shorter, at every attempt)."""
    from tests.fakes import sse

    ticks = iter(range(1_000_000))
    fake = FakeProvider()
    client = fake.openai()
    manager = notdiamond.init(
        client,
        models=["openai/gpt-4o"],
        timeout=60.0,
        deadline=25.0,
        clock=lambda: next(ticks) * 1e-3,  # time moves on at every read
        sleep=lambda _s: None,
    )
    fake.script("openai/gpt-4o", sse())
    try:
        stream = client.chat.completions.create(model="notdiamond", messages=USER, stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello"
    finally:
        manager.close()
    (sent,) = fake.sent
    assert sent.timeout is not None
    assert len(set(sent.timeout.values())) == 1, sent.timeout  # one cut timeout, not a read cap
    assert sent.timeout["read"] == 25.0  # the first attempt starts when the call does
