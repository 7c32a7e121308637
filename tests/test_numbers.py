"""Issue 7 §3: numbers of any real type, values beyond a float, weights near the float maximum,
and waits that could overflow. Every refusal is a ValueError/TypeError at init; no call ever ends
in an arithmetic error."""

from __future__ import annotations

import math
import random
from collections import Counter
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import openai
import pytest
from tenacity import RetryCallState, Retrying

import notdiamond
from notdiamond._numbers import MAX_WAIT
from notdiamond._policy import wait_backoff_power
from notdiamond._selection import WeightedDraw
from tests.fakes import USER, FakeProvider, SleepRecorder, status

M = ["openai/gpt-4o"]
TWO = ["openai/gpt-4o", "openai/gpt-4o-mini"]


def _refused(fake: FakeProvider, error: type[Exception], match: str, **kwargs: Any) -> str:
    client = fake.openai()
    with pytest.raises(error, match=match) as caught:
        notdiamond.init(client, **kwargs)
    assert type(client) is openai.OpenAI, "a refused init must patch nothing"
    assert "_notdiamond_slot" not in client.__dict__
    return str(caught.value)


# -- any real number type ------------------------------------------------------------------

REALS = [
    np.float32(1.5),
    np.float16(1.5),
    np.float64(1.5),
    np.int64(3),
    np.uint8(3),
    Fraction(3, 2),
    Decimal("1.5"),
    np.array(1.5),  # a 0-d array is one number
]


@pytest.mark.parametrize("value", REALS, ids=lambda v: type(v).__name__)
def test_any_real_number_type_is_accepted_for_every_number(fake: FakeProvider, value: Any) -> None:
    manager = notdiamond.init(
        fake.openai(),
        models={"openai/gpt-4o": value, "openai/gpt-4o-mini": 1},
        timeout=value,
        backoff={"openai/gpt-4o": value},
        retry_after_cap=value,
        jitter=value / 4,
        sleep=SleepRecorder(),
    )
    expected = float(value)
    wrapper = manager.get_wrapper("openai/gpt-4o")
    assert wrapper.get_timeout("gpt-4o") == expected
    assert wrapper.get_backoff("gpt-4o") == expected
    assert manager.config.weights == (expected, 1.0)
    assert all(type(w) is float for w in manager.config.weights)
    assert type(wrapper.get_timeout("gpt-4o")) is float


@pytest.mark.parametrize("value", [np.int64(3), np.uint8(3), np.int32(3)], ids=str)
def test_any_integer_type_is_accepted_for_counts(fake: FakeProvider, value: Any) -> None:
    manager = notdiamond.init(
        fake.openai(), models=M, max_retries={"openai/gpt-4o": value}, seed=value
    )
    assert manager.get_wrapper("openai/gpt-4o").get_max_retries("gpt-4o") == 3
    assert type(manager.get_wrapper("openai/gpt-4o").get_max_retries("gpt-4o")) is int


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"timeout": np.bool_(True)}, TypeError, "seconds per attempt"),
        ({"backoff": True}, TypeError, "backoff base"),
        ({"models": {"openai/gpt-4o": np.bool_(True)}}, TypeError, "weight must be a number"),
        ({"max_retries": np.bool_(True)}, TypeError, "whole number"),
        ({"max_retries": np.float64(3.0)}, TypeError, "whole number"),
        ({"max_retries": Fraction(3)}, TypeError, "whole number"),
        ({"timeout": np.array([1.0, 2.0])}, TypeError, "seconds per attempt"),
        ({"timeout": np.array([1.0])}, TypeError, "seconds per attempt"),
        ({"timeout": 1 + 0j}, TypeError, "seconds per attempt"),
        ({"timeout": np.complex128(1)}, TypeError, "seconds per attempt"),
        ({"timeout": b"5"}, TypeError, "seconds per attempt"),
        ({"jitter": "0.5"}, TypeError, "jitter"),
        ({"retry_after_cap": "60"}, TypeError, "retry_after_cap"),
        ({"seed": np.float64(1.0)}, TypeError, "seed must be an int"),
        ({"timeout": Decimal("NaN")}, ValueError, "not a usable timeout"),
        ({"timeout": Decimal("sNaN")}, TypeError, "does not convert"),
    ],
)
def test_non_numbers_and_booleans_stay_refused(
    fake: FakeProvider, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    _refused(fake, error, match, **({"models": M} | kwargs))


# -- beyond a float: ValueError naming the fix, never OverflowError ------------------------

HUGE = [10**400, -(10**400), Fraction(10**400), 10**5000]


@pytest.mark.parametrize("huge", HUGE, ids=["10**400", "-10**400", "Fraction", "10**5000"])
@pytest.mark.parametrize(
    "make",
    [
        lambda h: {"models": {"openai/gpt-4o": h}},
        lambda h: {"models": M, "timeout": h},
        lambda h: {"models": M, "timeout": {"openai/gpt-4o": h}},
        lambda h: {"models": M, "backoff": h},
        lambda h: {"models": M, "backoff": {"openai/gpt-4o": h}},
        lambda h: {"models": M, "retry_after_cap": h},
        lambda h: {"models": M, "jitter": h},
    ],
    ids=["weight", "timeout", "timeout-dict", "backoff", "backoff-dict", "cap", "jitter"],
)
def test_integers_beyond_a_float_are_a_value_error(
    fake: FakeProvider, huge: Any, make: Any
) -> None:
    message = _refused(fake, ValueError, ".", **make(huge))
    assert "digits" in message or "too large" in message or "not allowed" in message
    assert len(message) < 600, "the message describes a huge integer, it does not print it"


def test_too_large_names_the_fix(fake: FakeProvider) -> None:
    message = _refused(fake, ValueError, "too large for a float", models=M, timeout=10**400)
    assert "about 401 digits" in message
    assert "Use a smaller number" in message


def test_decimal_beyond_a_float_is_refused_as_not_finite(fake: FakeProvider) -> None:
    _refused(fake, ValueError, "finite numbers >= 0", models={"openai/gpt-4o": Decimal("1e400")})


def test_timeout_beyond_what_a_socket_takes_is_refused(fake: FakeProvider) -> None:
    # socket.settimeout(1e10) raises OverflowError: such a timeout could never work.
    _refused(fake, ValueError, r"at most 1e\+09", models=M, timeout=1e10)
    manager = notdiamond.init(fake.openai(), models=M, timeout=MAX_WAIT)
    assert manager.get_wrapper("openai/gpt-4o").get_timeout("gpt-4o") == MAX_WAIT


# -- weights near the float maximum and below the minimum ----------------------------------


@pytest.mark.parametrize("weight", [1e308, 1.7e308, 5e-324, 1e-320], ids=str)
def test_extreme_equal_weights_draw_evenly(weight: float) -> None:
    keys = ("a", "b", "c")
    draw = WeightedDraw(keys, (weight,) * 3, random.Random(7))
    counts = Counter(draw.first() for _ in range(6000))
    assert set(counts) == set(keys)
    assert all(1800 < n < 2200 for n in counts.values()), counts  # 2000 expected, sd 37
    fallbacks = Counter(draw.next_model({"a"}) for _ in range(4000))
    assert set(fallbacks) == {"b", "c"}
    assert all(1800 < n < 2200 for n in fallbacks.values()), fallbacks


def test_weights_near_the_maximum_follow_the_weights() -> None:
    draw = WeightedDraw(("a", "b"), (1.5e308, 0.5e308), random.Random(11))
    share = Counter(draw.first() for _ in range(8000))["a"] / 8000
    assert 0.735 < share < 0.765  # 0.75 expected, sd 0.005


def test_scaling_keeps_the_draws_of_ordinary_weights() -> None:
    """Scaling by a power of two is exact: seeded draws are those of the plain running sums."""
    weights = (0.9, 0.1, 2.5, 1e-3)
    keys = ("a", "b", "c", "d")
    rng = random.Random(3)
    plain = [0.0]
    for w in weights:
        plain.append(plain[-1] + w)
    expected = []
    for _ in range(2000):
        u = rng.random() * plain[-1]
        expected.append(keys[min(sum(1 for c in plain[1:] if c <= u), 3)])
    draw = WeightedDraw(keys, weights, random.Random(3))
    assert [draw.first() for _ in range(2000)] == expected


def test_init_with_two_weights_of_1e308_serves_both(fake: FakeProvider) -> None:
    client = fake.openai()
    notdiamond.init(client, models={"openai/gpt-4o": 1e308, "openai/gpt-4o-mini": 1e308}, seed=5)
    for _ in range(400):
        client.chat.completions.create(model="notdiamond", messages=USER)
    counts = Counter(fake.keys())
    assert 160 < counts["openai/gpt-4o"] < 240, counts  # 200 expected, sd 10


# -- large backoffs: refused at init, and a wait never overflows ----------------------------


def _state(attempt: int) -> RetryCallState:
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    return state


@pytest.mark.parametrize(
    ("backoff", "attempt", "expected"),
    [
        (1e200, 2, MAX_WAIT),
        (2.0, 5000, MAX_WAIT),
        (1e9, 2, MAX_WAIT),
        (1e9, 1, 1e9),
        (10.0, 8, 1e8),
    ],
)
def test_a_backoff_wait_is_capped_and_never_overflows(
    backoff: float, attempt: int, expected: float
) -> None:
    assert wait_backoff_power(backoff)(_state(attempt)) == expected


def test_backoff_1e200_with_three_attempts_is_refused_at_init(fake: FakeProvider) -> None:
    message = _refused(fake, ValueError, "backoff", models=M, backoff=1e200, max_retries=3)
    assert "at most 1e+09" in message
    assert "max_retries=1" in message


@pytest.mark.parametrize(
    ("backoff", "attempts", "most"), [(2.0, 40, 30), (10.0, 11, 10), (2.0, 10**400, 30)]
)
def test_a_schedule_beyond_the_longest_wait_names_the_attempts_that_fit(
    fake: FakeProvider, backoff: float, attempts: int, most: int
) -> None:
    message = _refused(
        fake,
        ValueError,
        rf"max_retries <= {most} with this backoff",
        models=M,
        backoff={"openai/gpt-4o": backoff},
        max_retries=attempts,
    )
    assert message.startswith("backoff['openai/gpt-4o']")


@pytest.mark.parametrize(
    ("backoff", "attempts"), [(1e200, 1), (10.0, 10), (2.0, 30), (1.0, 10**400), (0.5, 10**6)]
)
def test_schedules_within_the_longest_wait_are_accepted(
    fake: FakeProvider, backoff: float, attempts: int
) -> None:
    notdiamond.init(fake.openai(), models=M, backoff=backoff, max_retries=attempts)


def test_a_call_with_the_largest_backoff_waits_and_falls_back(fake: FakeProvider) -> None:
    sleeps = SleepRecorder()
    client = fake.openai()
    notdiamond.init(client, models=TWO, backoff={"openai/gpt-4o": 1e9}, max_retries=2, sleep=sleeps)
    fake.always("openai/gpt-4o", status(500))
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert sleeps.waits == [1e9]
    assert fake.keys()[-1] == "openai/gpt-4o-mini"


@pytest.mark.parametrize("header", ["1e12", "1e400", "inf"])
def test_a_retry_after_beyond_the_longest_wait_falls_back_even_with_no_cap(
    fake: FakeProvider, header: str
) -> None:
    sleeps = SleepRecorder()
    client = fake.openai()
    notdiamond.init(client, models=TWO, max_retries=3, retry_after_cap=math.inf, sleep=sleeps)
    fake.script("openai/gpt-4o", status(429, {"retry-after": header}))
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert sleeps.waits == []
    assert fake.keys() == TWO


def test_no_cap_still_waits_a_long_retry_after(fake: FakeProvider) -> None:
    sleeps = SleepRecorder()
    client = fake.openai()
    notdiamond.init(client, models=TWO, max_retries=2, retry_after_cap=math.inf, sleep=sleeps)
    fake.script("openai/gpt-4o", status(429, {"retry-after": "86400"}))
    client.chat.completions.create(model="notdiamond", messages=USER)
    assert sleeps.waits == [86400.0]
    assert fake.keys() == ["openai/gpt-4o", "openai/gpt-4o"]


# -- the strategies' own numbers read the same way ---------------------------------------------


@pytest.mark.parametrize("kind", [np.int64, np.uint8, int], ids=lambda k: k.__name__)
def test_strategy_counts_of_any_integer_type(kind: Any) -> None:
    breaker = notdiamond.CircuitBreaker(consecutive_failures=kind(3), minimum_calls=kind(10))
    assert (breaker.consecutive_failures, breaker.minimum_calls) == (3, 10)
    assert type(breaker.consecutive_failures) is int


@pytest.mark.parametrize(
    "kind", [np.float32, np.float64, Fraction, Decimal, float], ids=lambda k: k.__name__
)
def test_strategy_durations_and_shares_of_any_real_type(kind: Any) -> None:
    breaker = notdiamond.CircuitBreaker(
        failure_ratio=kind("0.5"), window=kind(20), break_duration=kind(10)
    )
    assert (breaker.failure_ratio, breaker.window, breaker.break_duration) == (0.5, 20.0, 10.0)
    assert type(breaker.window) is float
    budget = notdiamond.RetryBudget(ratio=kind("0.25"), min_per_second=kind(2), window=kind(5))
    assert (budget.ratio, budget.min_per_second, budget.window) == (0.25, 2.0, 5.0)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: notdiamond.CircuitBreaker(window=10**5000), ValueError),
        (lambda: notdiamond.CircuitBreaker(consecutive_failures=-(10**5000)), ValueError),
        (lambda: notdiamond.CircuitBreaker(consecutive_failures=np.bool_(True)), TypeError),
        (lambda: notdiamond.RetryBudget(ratio=np.bool_(True)), TypeError),
        (lambda: notdiamond.RetryBudget(window=Fraction(10**400)), ValueError),
    ],
)
def test_strategy_numbers_refused_with_a_readable_message(
    make: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match=r"E\.g\.") as caught:
        make()
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize("option", ["circuit_breaker", "retry_budget"])
def test_a_huge_integer_as_a_strategy_option_is_described(fake: FakeProvider, option: str) -> None:
    message = _refused(fake, TypeError, "digits", models=M, **{option: 10**5000})
    assert len(message) < 300


def test_a_huge_negative_attempt_count_is_described(fake: FakeProvider) -> None:
    message = _refused(
        fake, ValueError, "about 5001 digits attempts", models=M, max_retries=-(10**5000)
    )
    assert "Use 1 or more" in message
