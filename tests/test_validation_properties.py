"""Property-based tests of ``init``'s validation (issue 7 §3).

For any input: either a coherent manager that serves a call, or a ``ValueError``/``TypeError``
with a message and the clients exactly as they were. Never another exception (``OverflowError``,
``KeyError``, ...), never a half-patched client. And valid values of any real number type are
accepted with the value the user meant.
"""

from __future__ import annotations

import asyncio
import math
import time
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import openai
from hypothesis import event, given, settings
from hypothesis import strategies as st

import notdiamond
from notdiamond._config import longest_wait_fits
from notdiamond._options import MAX_WAIT
from tests.fakes import USER, AsyncSleepRecorder, FakeProvider, SleepRecorder, status

VALID_KEYS = ["openai/gpt-4o", "openai/gpt-4o-mini", "azure/gpt-4o", "openai/ft:org/x"]
STR_KEYS = st.sampled_from(
    [
        *VALID_KEYS,
        "azure/other-model",  # well-formed, not configured: ignored with a warning
        "openai/gpt4o",  # one typo from a valid key
        "azure/gtp-4o",
        "gpt-4o",  # no provider
        "openai:gpt-4o",
        "openai/",
        "/gpt-4o",
        "anthropic/claude",
        "",
    ]
)
KEYS = STR_KEYS | st.sampled_from([42, None, 1.5, ("openai", "gpt-4o")])

#: Values at the edges of a float: beyond it, at its maximum, at its smallest.
EXTREME = st.sampled_from(
    [10**400, -(10**400), Fraction(10**400), 10**5000, Decimal("1e400"), 1e308, 1e200, 5e-324]
)


def _any_type(value: float | int, *, integral: bool) -> st.SearchStrategy[Any]:
    """``value`` as one of the real number types a user may hold."""
    if integral:
        return st.sampled_from([int(value), np.int64(value), np.uint16(value), np.int8(value)])
    kinds: list[Any] = [float(value), np.float64(value), Fraction(value), Decimal(value)]
    kinds.append(np.array(value))  # a 0-d array is one number
    if abs(value) < 3e38:  # float32 holds it
        kinds.append(np.float32(value))
    return st.sampled_from(kinds)


def _typed(
    values: st.SearchStrategy[float] | st.SearchStrategy[int], *, integral: bool = False
) -> st.SearchStrategy[Any]:
    return values.flatmap(lambda v: _any_type(v, integral=integral))


# -- anything a user might pass, valid or not -------------------------------------------------

_FLOATS = st.floats(allow_nan=True, allow_infinity=True)
NUMBERS = st.one_of(
    EXTREME,
    st.integers(min_value=-3, max_value=40),
    EXTREME,
    st.integers(),
    _FLOATS,
    st.booleans(),
    st.fractions(max_denominator=10),
    st.decimals(allow_nan=True, allow_infinity=True, places=3),
    st.builds(np.float32, st.floats(width=32)),
    st.builds(np.float64, _FLOATS),
    st.builds(np.int64, st.integers(min_value=-(2**63), max_value=2**63 - 1)),
    st.just(np.bool_(True)),
    st.just(np.array([1.0, 2.0])),
    st.just(1 + 2j),
    st.text(max_size=3),
    st.none(),
)


def _per_model(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return values | st.dictionaries(STR_KEYS, values, max_size=3)


ROLES = st.sampled_from(["system", "developer", "user", "assistant", "tool", 5, None])
MESSAGES = (
    st.lists(st.fixed_dictionaries({"role": ROLES, "content": st.just("be brief")}), max_size=2)
    | st.just("be brief")
    | st.just([{"content": "x"}])
)

ANYTHING: dict[str, st.SearchStrategy[Any]] = {
    "models": st.one_of(
        st.lists(KEYS, max_size=4),
        st.dictionaries(STR_KEYS, NUMBERS, max_size=4),
        st.just("openai/gpt-4o"),
        st.none(),
        st.integers(),
    ),
    "max_retries": _per_model(NUMBERS),
    "timeout": _per_model(NUMBERS),
    "backoff": _per_model(NUMBERS),
    "model_messages": st.none()
    | MESSAGES
    | st.dictionaries(STR_KEYS, MESSAGES, max_size=2)
    | st.just({"role": "system", "content": "x"}),
    "seed": NUMBERS,
    "clock": st.just(time.monotonic) | NUMBERS,
    "sleep": st.sampled_from([asyncio.sleep, time.sleep, 5, None]),
    "sdk_retries": st.booleans() | NUMBERS,
    "retry_after_cap": NUMBERS,
    "jitter": NUMBERS,
    "observer": st.sampled_from([None, "print", 3]),
    "deadline": NUMBERS,
    "circuit_breaker": st.sampled_from([True, None, notdiamond.CircuitBreaker(), "on"]) | NUMBERS,
    "retry_budget": st.sampled_from([True, None, notdiamond.RetryBudget(), 0.2]) | NUMBERS,
    "first_chunk_timeout": _per_model(NUMBERS),
    "retries": NUMBERS,  # not an option: a misspelt max_retries
    "jiter": NUMBERS,
}

# -- valid values, of every real number type ---------------------------------------------------

OPENING = st.sampled_from(["system", "developer", "user"])
VALID_MESSAGES = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"])}),
    max_size=2,
).flatmap(
    lambda rest: OPENING.map(lambda role: [{"role": role, "content": "x"}, *rest]) | st.just([])
)
VALID_WEIGHTS = _typed(st.floats(min_value=0, max_value=1e308) | st.sampled_from([0.0, 1e308]))


def _valid_per_model(keys: list[str], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return values | st.dictionaries(st.sampled_from([*keys, "azure/other-model"]), values)


@st.composite
def _configs(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    """A valid configuration, then (sometimes) one field replaced by anything: (kwargs, field)."""
    keys = draw(st.lists(st.sampled_from(VALID_KEYS), min_size=1, max_size=4, unique=True))
    if draw(st.booleans()):
        weights = draw(st.lists(VALID_WEIGHTS, min_size=len(keys), max_size=len(keys)))
        if not any(float(w) > 0 for w in weights):
            weights[0] = 1
        models: Any = dict(zip(keys, weights, strict=True))
    else:
        models = keys
    kwargs: dict[str, Any] = {
        "models": models,
        "max_retries": draw(_valid_per_model(keys, _typed(st.integers(1, 5), integral=True))),
        "timeout": draw(_valid_per_model(keys, _typed(st.floats(1e-3, 1e6)))),
        "backoff": draw(_valid_per_model(keys, _typed(st.floats(0, 50)))),
    }
    if draw(st.booleans()):  # the longest schedules that fit: one attempt, or 1e9 s then one more
        kwargs["max_retries"], kwargs["backoff"] = draw(st.sampled_from([(1, 1e200), (2, 1e9)]))
    kwargs["model_messages"] = draw(st.none() | _valid_per_model(keys, VALID_MESSAGES))
    options = {
        "seed": st.none() | _typed(st.integers(0, 100), integral=True),
        "clock": st.just(time.monotonic),
        "sdk_retries": st.booleans(),
        "retry_after_cap": _typed(st.floats(0, 1e12)) | st.just(math.inf),
        "jitter": _typed(st.floats(0, 1)),
        "observer": st.just(None),
        "deadline": st.none() | _typed(st.floats(10, 1e6)),
        "circuit_breaker": st.sampled_from([None, False, True, notdiamond.CircuitBreaker()]),
        "retry_budget": st.sampled_from([None, False, True, notdiamond.RetryBudget()]),
        "first_chunk_timeout": st.none() | _valid_per_model(keys, _typed(st.floats(1e-3, 1e6))),
    }
    for name, values in options.items():
        if draw(st.booleans()):
            kwargs[name] = draw(values)
    corrupt = draw(st.sampled_from([None, None, None, *ANYTHING]))
    if corrupt is not None:
        kwargs[corrupt] = draw(ANYTHING[corrupt])
    return kwargs, corrupt


def _call(client: Any, model: str, is_async: bool) -> Any:
    create = client.chat.completions.create
    if is_async:
        return asyncio.run(create(model=model, messages=USER))
    return create(model=model, messages=USER)


def _expected(raw: Any, key: str, default: float) -> float:
    if isinstance(raw, dict):
        return float(raw[key]) if key in raw else default
    return float(raw)


@settings(max_examples=150)  # the profile's other settings (derandomize in CI) still apply
@given(config=_configs(), is_async=st.booleans())
def test_any_input_gives_a_coherent_manager_or_a_clear_refusal(
    config: tuple[dict[str, Any], str | None], is_async: bool
) -> None:
    kwargs, corrupt = config
    fake = FakeProvider()
    clients: list[Any] = (
        [fake.async_openai(), fake.async_azure()] if is_async else [fake.openai(), fake.azure()]
    )
    classes = [type(c) for c in clients]
    if "sleep" not in kwargs:  # virtual time
        kwargs["sleep"] = AsyncSleepRecorder() if is_async else SleepRecorder()
        kwargs.setdefault("clock", kwargs["sleep"].clock)
    refusal: Exception | None = None
    try:
        manager = notdiamond.init(clients, **kwargs)
    except (ValueError, TypeError) as exc:
        refusal = exc
    if refusal is not None:
        event(f"refused: {type(refusal).__name__}: {str(refusal)[:70]}")
        assert corrupt is not None, f"a valid configuration was refused: {refusal}"
        assert str(refusal).strip(), "a refusal names the problem"
        assert "string conversion" not in str(refusal), "not an accident while writing it"
        assert [type(c) for c in clients] == classes, "a refused init patches nothing"
        assert all("_notdiamond_slot" not in c.__dict__ for c in clients)
        return
    event("accepted" if corrupt is None else "accepted, with one field drawn from anything")

    try:
        order = list(kwargs["models"])
        assert list(manager.models) == order
        for key in order:
            wrapper = manager.get_wrapper(key)
            attempts = wrapper.get_max_retries(key)
            seconds = wrapper.get_timeout(key)
            base = wrapper.get_backoff(key)
            assert type(attempts) is int
            assert attempts >= 1
            assert type(seconds) is float
            assert 0 < seconds <= MAX_WAIT
            assert type(base) is float
            assert math.isfinite(base)
            assert base >= 0
            assert longest_wait_fits(base, attempts)
            assert seconds == _expected(kwargs.get("timeout", 60.0), key, 60.0)
            assert base == _expected(kwargs.get("backoff", 2.0), key, 2.0)
        if manager.config.weights is not None:
            weights = manager.config.weights
            assert all(math.isfinite(w) and w >= 0 for w in weights)
            assert any(w > 0 for w in weights)
            first = manager.get_next_model(set())
            assert first is not None
            assert weights[order.index(first)] > 0
        reply = _call(clients[0], "notdiamond", is_async)
        assert reply.choices[0].message.content == "hi"
        assert fake.keys()[-1] in order
        # In virtual time (and without the SDK's own retries, which sleep for real):
        # (The fake fails 1000 times: a model with more attempts would be served in the end.)
        attempts = manager.get_wrapper(order[0]).get_max_retries(order[0])
        virtual = isinstance(kwargs["sleep"], SleepRecorder) and not kwargs.get("sdk_retries")
        if virtual and attempts < 1000:
            # The first model fails every attempt: the call waits its backoff schedule, then
            # falls back or raises the SDK's error; never an arithmetic error.
            fake.always(order[0], status(500))
            before = len(fake.keys())
            try:
                _call(clients[0], order[0], is_async)
                assert fake.keys()[-1] != order[0], "served by a fallback"
            except openai.InternalServerError:  # no fallback left (one model, or weights of 0)
                assert set(fake.keys()[before:]) == {order[0]}
            except openai.APIError:  # the deadline, or every model skipped by the breaker
                assert kwargs.get("deadline") or kwargs.get("circuit_breaker")
            assert all(0 <= wait <= MAX_WAIT for wait in kwargs["sleep"].waits)
    finally:
        manager.close()
    assert [type(c) for c in clients] == classes, "close() restores every client"


# -- valid values of any real type are accepted, as the value the user meant ----------------


@given(
    weights=st.lists(
        _typed(st.floats(min_value=0, max_value=1e308)), min_size=2, max_size=2
    ).filter(lambda ws: any(float(w) > 0 for w in ws)),
    attempts=_typed(st.integers(min_value=1, max_value=6), integral=True),
    timeout=_typed(st.floats(min_value=1e-3, max_value=MAX_WAIT / 10)),
    backoff=_typed(st.floats(min_value=0, max_value=30)),
    cap=_typed(st.floats(min_value=0, max_value=1e12)),
    jitter=_typed(st.floats(min_value=0, max_value=1)),
    seed=_typed(st.integers(min_value=0, max_value=100), integral=True),
)
def test_valid_values_of_any_real_type_are_accepted_as_meant(
    weights: list[Any],
    attempts: Any,
    timeout: Any,
    backoff: Any,
    cap: Any,
    jitter: Any,
    seed: Any,
) -> None:
    fake = FakeProvider()
    client = fake.openai()
    keys = ["openai/gpt-4o", "openai/gpt-4o-mini"]
    with notdiamond.init(
        client,
        models=dict(zip(keys, weights, strict=True)),
        max_retries=attempts,
        timeout={"openai/gpt-4o": timeout},
        backoff=backoff,
        retry_after_cap=cap,
        jitter=jitter,
        seed=seed,
        sleep=SleepRecorder(),
    ) as manager:
        assert manager.config.weights == tuple(float(w) for w in weights)
        wrapper = manager.get_wrapper("openai/gpt-4o")
        assert wrapper.get_max_retries("gpt-4o") == int(attempts)
        assert wrapper.get_timeout("gpt-4o") == float(timeout)
        assert wrapper.get_backoff("gpt-4o") == float(backoff)
        client.chat.completions.create(model="notdiamond", messages=USER)
        assert fake.keys()[-1] in keys
    assert type(client) is openai.OpenAI
