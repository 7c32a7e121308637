"""``_options``: the one home of every keyword-only option of ``init``."""

from __future__ import annotations

import math
import time
from typing import get_type_hints

import anyio
import pytest

import notdiamond
from notdiamond._init import InitOptions
from notdiamond._options import MAX_WAIT, OPTIONS, OptionContext, parse_options
from tests.fakes import FakeProvider


def test_every_option_has_one_row_and_one_public_type() -> None:
    assert list(OPTIONS) == list(get_type_hints(InitOptions))
    assert all(option.doc for option in OPTIONS.values())
    assert all(name == option.name for name, option in OPTIONS.items())


@pytest.mark.parametrize("is_async", [False, True])
def test_every_default_passes_its_own_check(is_async: bool) -> None:
    context = OptionContext(is_async=is_async)
    for option in OPTIONS.values():
        option.check(option.default, context)
    resolved = parse_options({}, is_async=is_async)
    assert resolved == {
        "seed": None,
        "clock": time.monotonic,
        "sleep": anyio.sleep if is_async else time.sleep,
        "sdk_retries": False,
        "retry_after_cap": 60.0,
        "jitter": 0.0,
        "observer": None,
        "deadline": None,
        "circuit_breaker": None,
        "retry_budget": None,
        "first_chunk_timeout": {},
        "hedge": None,
        "state": None,
    }


def test_the_manager_receives_the_resolved_options(fake: FakeProvider) -> None:
    def clock() -> float:
        return 0.0

    manager = notdiamond.init(
        fake.openai(), models=["openai/gpt-4o"], clock=clock, sdk_retries=True
    )
    assert manager.clock is clock
    assert manager.sdk_retries is True
    assert manager.sleep is time.sleep


def test_parse_options_serves_other_callers_too() -> None:
    """The chaos harness validates a scenario file's options with the same function."""
    assert parse_options({"jitter": 0.25}, is_async=False)["jitter"] == 0.25
    with pytest.raises(ValueError, match="jitter"):
        parse_options({"jitter": 2}, is_async=False)
    with pytest.raises(TypeError, match="did you mean 'jitter'"):
        parse_options({"jiter": 0.1}, is_async=False)


def test_an_unbounded_retry_after_cap_is_the_longest_wait() -> None:
    assert (
        parse_options({"retry_after_cap": math.inf}, is_async=False)["retry_after_cap"] == MAX_WAIT
    )
    assert parse_options({"retry_after_cap": 0}, is_async=False)["retry_after_cap"] == 0.0
