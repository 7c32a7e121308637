from __future__ import annotations

import functools
import logging
import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.fakes import AsyncSleepRecorder, FakeProvider, SleepRecorder

# Property tests: a moderate number of examples, so each file runs in seconds; random locally,
# the same examples on every CI run (CI is set); failures print their example (no database).
settings.register_profile(
    "notdiamond",
    max_examples=60,
    deadline=None,
    database=None,
    derandomize=bool(os.environ.get("CI")),
)
settings.load_profile("notdiamond")


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def async_sleeps() -> AsyncSleepRecorder:
    return AsyncSleepRecorder()


@pytest.fixture(autouse=True)
def _close_managers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every manager a test opened, so no patched client leaks into the next test."""
    import notdiamond

    opened: list[notdiamond.RetryManager] = []
    real_init = notdiamond.init

    @functools.wraps(real_init)
    def tracking_init(*args, **kwargs):  # type: ignore[no-untyped-def]
        manager = real_init(*args, **kwargs)
        opened.append(manager)
        return manager

    monkeypatch.setattr(notdiamond, "init", tracking_init)
    yield
    for manager in opened:
        manager.close()


@pytest.fixture
def nd_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="notdiamond")
    return caplog
