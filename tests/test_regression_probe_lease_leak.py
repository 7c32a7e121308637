"""A half-open probe granted at a fallback, whose attempt is then never sent because the deadline
passed in between, keeps its lease: the model is skipped until the lease (max_break_duration) ends."""

import openai
import pytest

import notdiamond
from tests.fakes import USER, FakeProvider, SleepRecorder, status


def test_probe_lease_released_when_attempt_is_never_sent() -> None:
    fake, clock = FakeProvider(), SleepRecorder()
    client = fake.openai()
    slow_observer = {"on": False}

    def observer(event: object) -> None:  # e.g. an exporter that takes a moment
        if slow_observer["on"]:
            clock.now += 1.5

    manager = notdiamond.init(
        client,
        models=["openai/a", "openai/b"],
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=1, break_duration=1.0),
        clock=clock.clock,
        sleep=clock,
        observer=observer,
    )
    try:
        fake.script("openai/b", status(503))
        client.chat.completions.create(
            model="openai/b", messages=USER
        )  # b opens until t=1; a serves
        assert manager.health()["openai/b"].state == "open"
        clock.now = 2.0  # break over: next admission of b is its half-open probe
        fake.script("openai/a", status(400))
        slow_observer["on"] = True
        with (
            notdiamond.deadline(1.0),
            pytest.raises(openai.BadRequestError),
        ):  # a: 400 -> fall back to b (probe) -> time up
            client.chat.completions.create(model="notdiamond", messages=USER)
        slow_observer["on"] = False
        assert fake.count("openai/b") == 1  # the probe was never sent
        # No call is in flight now, so no probe may be in flight either.
        assert not manager.health()["openai/b"].breaker.probe_in_flight
        clock.now = 10.0
        client.chat.completions.create(model="notdiamond", messages=USER)  # a fine
        client.chat.completions.create(model="openai/b", messages=USER)
        assert fake.count("openai/b") == 2, "b should be probed, not skipped for 300 s"
    finally:
        manager.close()
