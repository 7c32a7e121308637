"""The pipeline's contract with a strategy, shown with small scripted strategies."""

from __future__ import annotations

from collections.abc import Sequence

import openai
import pytest

import notdiamond
from notdiamond._assembly import Pipeline
from notdiamond._call import CallState
from notdiamond._strategy import Admission, Strategy, overrides
from tests.fakes import USER, FakeProvider, SleepRecorder, status

THREE = ["openai/gpt-4o", "openai/gpt-4o-mini", "azure/gpt-4o"]


class Scripted(Strategy):
    name = "scripted"

    def __init__(self, verdicts: dict[str, Admission], resort: str | None = None) -> None:
        self.verdicts = verdicts
        self.resort = resort
        self.log: list[tuple[str, ...]] = []

    def admit(self, call: CallState, key: str, now: float) -> Admission:
        self.log.append(("admit", key))
        return self.verdicts.get(key, "admit")

    def last_resort(self, call: CallState, skipped: Sequence[str], now: float) -> str | None:
        self.log.append(("last_resort", *skipped))
        return self.resort

    def attempt_started(self, call: CallState, key: str, attempt: int, now: float) -> None:
        self.log.append(("started", key, str(attempt)))

    def attempt_succeeded(self, call: CallState, key: str, now: float) -> None:
        self.log.append(("succeeded", key))

    def attempt_failed(self, call: CallState, key: str, exc: Exception, now: float) -> None:
        self.log.append(("failed", key, type(exc).__name__))


def _manager(fake: FakeProvider, sleeps: SleepRecorder, strategy: Strategy, **kw: object):
    client = fake.openai()
    manager = notdiamond.init(
        [client, fake.azure()], models=THREE, clock=sleeps.clock, sleep=sleeps, **kw
    )
    # Assemble a pipeline with the strategy, as init does for the built-in ones.
    wrappers = dict(manager.pipeline.wrapper_of)
    manager.pipeline.__init__(  # type: ignore[misc]
        settings=manager.settings,
        next_model=manager.get_next_model,
        policies=manager.policies,
        strategies=(strategy,),
        clock=sleeps.clock,
        sleep=sleeps,
        observer=None,
        deadline=None,
    )
    manager.pipeline.wrapper_of.update(wrappers)
    return client


def test_only_overridden_hooks_are_dispatched() -> None:
    pipeline = Pipeline(
        settings={},
        next_model=lambda failed: None,
        policies={},
        strategies=(Scripted({}),),
        clock=lambda: 0.0,
        sleep=lambda s: None,
        observer=None,
        deadline=None,
    )
    assert pipeline.admit_by
    assert pipeline.attempt_failed_by
    assert not pipeline.allow_retry_by
    assert not pipeline.readmit_by
    assert overrides(Scripted({}), "admit")
    assert not overrides(Strategy(), "admit")
    empty = Pipeline(
        settings={},
        next_model=lambda failed: None,
        policies={},
        strategies=(),
        clock=lambda: 0.0,
        sleep=lambda s: None,
        observer=None,
        deadline=None,
    )
    assert not empty.timed


def test_skipped_models_are_treated_as_failed(fake, sleeps) -> None:
    strategy = Scripted({"openai/gpt-4o": "skip"})
    client = _manager(fake, sleeps, strategy)
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o-mini"]
    assert strategy.log == [
        ("admit", "openai/gpt-4o"),
        ("admit", "openai/gpt-4o-mini"),
        ("started", "openai/gpt-4o-mini", "1"),
        ("succeeded", "openai/gpt-4o-mini"),
    ]


def test_a_probe_gets_exactly_one_attempt(fake, sleeps) -> None:
    strategy = Scripted({"openai/gpt-4o": "probe"})
    client = _manager(fake, sleeps, strategy, max_retries=3)
    fake.script("openai/gpt-4o", status(503))
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert sleeps.waits == []  # no same-model retry of a probe


def test_last_resort_when_every_model_is_skipped(fake, sleeps) -> None:
    skip_all: dict[str, Admission] = dict.fromkeys(THREE, "skip")
    strategy = Scripted(skip_all, resort="azure/gpt-4o")
    client = _manager(fake, sleeps, strategy)
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["azure/gpt-4o"]
    assert ("last_resort", *THREE) in strategy.log


def test_nothing_admitted_and_no_last_resort_raises_models_unavailable(fake, sleeps) -> None:
    strategy = Scripted(dict.fromkeys(THREE, "skip"))
    client = _manager(fake, sleeps, strategy)
    with pytest.raises(notdiamond.ModelsUnavailable) as caught:
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert isinstance(caught.value, openai.APIConnectionError)
    assert fake.keys() == []


class Budgeted(Strategy):
    name = "budgeted"

    def __init__(self, retries: int) -> None:
        self.retries = retries

    def allow_retry(self, call: CallState, key: str, wait: float, now: float) -> bool:
        if self.retries <= 0:
            return False
        self.retries -= 1
        return True


def test_allow_retry_false_falls_back_at_once(fake, sleeps) -> None:
    client = _manager(fake, sleeps, Budgeted(retries=1), max_retries=5)
    fake.always("openai/gpt-4o", status(503), n=5)
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o", "openai/gpt-4o", "openai/gpt-4o-mini"]
    assert sleeps.waits == [2.0]


class OpensDuringWait(Strategy):
    name = "opens"

    def readmit(self, call: CallState, key: str, now: float) -> bool:
        return key != "openai/gpt-4o"


def test_a_model_that_opened_during_the_wait_is_left_at_once(fake, sleeps) -> None:
    client = _manager(fake, sleeps, OpensDuringWait(), max_retries=3)
    fake.always("openai/gpt-4o", status(503), n=5)
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o", "openai/gpt-4o-mini"]
    assert sleeps.waits == [2.0]  # the wait already begun is not cut short


class Releases(Strategy):
    name = "releases"

    def __init__(self) -> None:
        self.abandoned: list[str] = []

    def attempt_abandoned(self, call: CallState, key: str) -> None:
        self.abandoned.append(key)


def test_an_interrupted_attempt_is_reported_abandoned(fake, sleeps) -> None:
    from tests.fakes import raises

    strategy = Releases()
    client = _manager(fake, sleeps, strategy)
    fake.script("openai/gpt-4o", raises(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert strategy.abandoned == ["openai/gpt-4o"]


def test_a_refused_retry_with_no_model_left_ends_with_a_raise_event(fake, sleeps) -> None:
    events = []
    client = fake.openai()
    manager = notdiamond.init(
        client,
        models=["openai/gpt-4o"],
        max_retries=3,
        clock=sleeps.clock,
        sleep=sleeps,
        observer=events.append,
    )
    wrappers = dict(manager.pipeline.wrapper_of)
    manager.pipeline.__init__(  # type: ignore[misc]
        settings=manager.settings,
        next_model=manager.get_next_model,
        policies=manager.policies,
        strategies=(OpensDuringWait(),),
        clock=sleeps.clock,
        sleep=sleeps,
        observer=events.append,
        deadline=None,
    )
    manager.pipeline.wrapper_of.update(wrappers)
    fake.always("openai/gpt-4o", status(503), n=5)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="notdiamond", messages=USER)
    assert fake.keys() == ["openai/gpt-4o"]  # the announced retry was never sent
    assert [(e.attempt, e.decision) for e in events] == [(1, "retry"), (1, "raise")]
    assert events[-1].wait_before == 2.0  # the wait that was taken before the call ended
