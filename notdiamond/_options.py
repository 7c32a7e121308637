"""The keyword-only options of ``notdiamond.init``: for each, its default, validation and doc.

This is their one home. ``init`` validates its ``**options`` through :func:`parse_options`; the
chaos harness validates a scenario file's options through the same function. Adding an option
is a field of ``InitOptions`` in ``_init`` (its public type), one :class:`Option` row in
:data:`OPTIONS`, and the parameter of the same name on ``RetryManager``.

Numbers are read by ``_numbers`` (shared with ``_config`` and the strategies' options).
"""

from __future__ import annotations

import difflib
import inspect
import math
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

import anyio

from ._config import PerModel
from ._hedge_options import check_hedge
from ._hints import near_miss
from ._numbers import (
    DEFAULT_RETRY_AFTER_CAP,
    MAX_WAIT,
    describe,
    is_boolean,
    real_number,
    whole_number,
)
from ._strategies.breaker import circuit_breaker_option
from ._strategies.budget import retry_budget_option

# -- the options -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OptionContext:
    """What an option's validation may depend on besides its value."""

    #: The managed clients are async (``AsyncOpenAI``, ``AsyncAzureOpenAI``).
    is_async: bool
    #: The configured model keys, for options given per model (like ``timeout``).
    models: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Option:
    """One keyword-only option of ``init``."""

    name: str
    #: The value when the option is not given (passed through ``check`` like a given one).
    default: object
    #: ``check(value, context)``: the value the manager receives, or ``TypeError``/``ValueError``.
    check: Callable[[object, OptionContext], object]
    doc: str


def _seed(value: object, _: OptionContext) -> int | None:
    if value is None:
        return None
    try:
        return whole_number(value, where="seed", expected="an int or None")
    except TypeError:
        raise TypeError(f"seed must be an int or None, got {describe(value)}.") from None


def _callable(name: str, value: object) -> Any:
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {describe(value)}.")
    return value


def _clock(value: object, _: OptionContext) -> Callable[[], float]:
    return _callable("clock", value)  # type: ignore[no-any-return]


def is_coroutine_function(fn: object) -> bool:
    """``fn`` is an ``async def`` function, or an object whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004  (callable objects with an async __call__)
    )


def _sleep(value: object, context: OptionContext) -> Any:
    if value is None:
        return anyio.sleep if context.is_async else time.sleep
    _callable("sleep", value)
    if context.is_async and not is_coroutine_function(value):
        raise TypeError(
            "sleep: async clients need a coroutine function, e.g. asyncio.sleep or "
            "`async def sleep(seconds): ...`."
        )
    if not context.is_async and is_coroutine_function(value):
        raise TypeError(
            "sleep: sync clients need a plain function such as time.sleep, not a coroutine."
        )
    return value


def _flag(name: str) -> Callable[[object, OptionContext], bool]:
    def check(value: object, _: OptionContext) -> bool:
        if not is_boolean(value):  # bool, or numpy's bool
            raise TypeError(f"{name} must be True or False, got {describe(value)}.")
        return bool(value)

    return check


def _retry_after_cap(value: object, _: OptionContext) -> float:
    fix = (
        "retry_after_cap must be a number of seconds >= 0 (math.inf to wait as long as the "
        "server asks)"
    )
    try:
        cap = real_number(value, where="retry_after_cap", expected="a number of seconds")
    except TypeError:
        raise TypeError(f"{fix}, got {describe(value)}.") from None
    except ValueError:
        raise ValueError(f"{fix}, got {describe(value)}, which is too large for a float.") from None
    if math.isnan(cap) or cap < 0:
        raise ValueError(f"{fix}, got {describe(value)}.")
    # A wait beyond MAX_WAIT cannot be slept: asking for longer falls back, whatever the cap.
    return min(cap, MAX_WAIT)


def _jitter(value: object, _: OptionContext) -> float:
    fix = (
        "jitter is the largest fraction by which a backoff wait is shortened at random: a "
        "number from 0 (off) to 1"
    )
    try:
        jitter = real_number(value, where="jitter", expected="a number from 0 to 1")
    except TypeError:
        raise TypeError(f"{fix}, got {describe(value)}. E.g. jitter=0.25.") from None
    except ValueError:
        raise ValueError(f"{fix}, got {describe(value)}, which is too large for a float.") from None
    if not 0 <= jitter <= 1:
        raise ValueError(f"{fix}, got {describe(value)}. E.g. jitter=0.25.")
    return jitter


def _observer(value: object, _: OptionContext) -> Any:
    return None if value is None else _callable("observer", value)


def check_deadline(value: object, *, where: str = "deadline") -> float:
    """A call's deadline in seconds: a finite number > 0 (the option and ``notdiamond.deadline``)."""
    seconds = real_number(value, where=where, expected="seconds per call as a number")
    if not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_WAIT:
        raise ValueError(
            f"{where}: {describe(value)} is not a usable deadline. Use a finite number of "
            "seconds > 0 for one whole call, e.g. 30.0 (or None for no deadline)."
        )
    return seconds


def _deadline(value: object, _: OptionContext) -> float | None:
    return None if value is None else check_deadline(value)


def _first_chunk_timeout(value: object, context: OptionContext) -> dict[str, float]:
    """The models that have a ``first_chunk_timeout``, and its value for each."""
    if value is None:
        return {}
    per_model = PerModel("first_chunk_timeout", value, None, _check_first_chunk, context.models)
    return {key: limit for key, limit in per_model.values.items() if limit is not None}


def _check_first_chunk(where: str, value: object) -> float | None:
    if value is None:
        return None
    limit = real_number(
        value,
        where=where,
        expected="seconds from sending a streamed attempt to its first chunk (or None)",
    )
    if not math.isfinite(limit) or limit <= 0 or limit > MAX_WAIT:
        raise ValueError(
            f"{where}: {describe(value)} is not a usable first-chunk timeout. Use a finite number "
            "of seconds > 0, e.g. first_chunk_timeout=10.0, or None for no limit."
        )
    return limit


def _hedge(value: object, context: OptionContext) -> Any:
    return check_hedge(value, is_async=context.is_async)


def _circuit_breaker(value: object, _: OptionContext) -> Any:
    return circuit_breaker_option(value)  # the strategy owns its options


def _retry_budget(value: object, _: OptionContext) -> Any:
    return retry_budget_option(value)


def _state(value: object, context: OptionContext) -> Any:
    if value is not None and not (
        callable(getattr(value, "circuit", None)) and callable(getattr(value, "budget", None))
    ):
        raise TypeError(
            "state must be None (health state in this process's memory, the default) or a shared "
            "store such as notdiamond.RedisState('redis://localhost:6379/0'), got "
            f"{type(value).__name__}."
        )
    if getattr(value, "needs_event_loop", False) and not context.is_async:
        raise TypeError(
            "state: this RedisState has a redis.asyncio client, which needs an event loop, but the "
            "clients are sync. Pass a redis.Redis client or a Redis URL to RedisState instead."
        )
    return value


#: Every keyword-only option of ``init``, in the order the documentation lists them.
OPTIONS: Final[Mapping[str, Option]] = {
    option.name: option
    for option in (
        Option("seed", None, _seed, "seed of the manager's generator for weighted draws"),
        Option("clock", time.monotonic, _clock, "monotonic clock in seconds"),
        Option("sleep", None, _sleep, "backoff sleep (default: time.sleep / anyio.sleep)"),
        Option("sdk_retries", False, _flag("sdk_retries"), "leave the SDK's own retries on"),
        Option(
            "retry_after_cap",
            DEFAULT_RETRY_AFTER_CAP,
            _retry_after_cap,
            "longest Retry-After waited for; beyond it, fall back",
        ),
        Option("jitter", 0.0, _jitter, "largest random fraction cut from a backoff wait"),
        Option("observer", None, _observer, "called with an AttemptEvent after every attempt"),
        Option(
            "deadline", None, _deadline, "seconds one whole call may take, all attempts included"
        ),
        Option("circuit_breaker", None, _circuit_breaker, "per-model circuit breaker"),
        Option("retry_budget", None, _retry_budget, "per-model retry budget"),
        Option(
            "first_chunk_timeout",
            None,
            _first_chunk_timeout,
            "seconds from sending a streamed attempt to its first chunk; one or per model",
        ),
        Option("hedge", None, _hedge, "notdiamond.Hedge(...): race a slow attempt (async clients)"),
        Option("state", None, _state, "where breaker and budget state live (e.g. RedisState)"),
    )
}


def check_option_names(given: Collection[str], *, parameters: Collection[str] = ()) -> None:
    """Refuse names that are not options, suggesting the closest name.

    ``parameters`` are the caller's named parameters (``init``'s positional ones): a misspelt
    one lands among the options too (``retries=`` for ``max_retries``), so both are suggested
    and listed.
    """
    unknown = [name for name in given if name not in OPTIONS]
    if not unknown:
        return
    valid = [*parameters, *OPTIONS]
    hints = []
    for name in unknown:
        close = suggest_name(name, valid)
        hints.append(f"{name!r} (did you mean {close!r}?)" if close else repr(name))
    raise TypeError(
        f"notdiamond.init() got unknown option(s) {', '.join(hints)}. "
        f"Parameters and options are: {', '.join(valid)}."
    )


def suggest_name(name: str, valid: Collection[str]) -> str | None:
    """The valid name ``name`` most likely stands for, or ``None``.

    In order: one typo away, the same name in other case or with ``-`` for ``_``, a close
    match (``difflib``), a name containing it or contained in it (``retries`` -> ``max_retries``).
    """
    typo = near_miss(name, valid)
    if typo is not None:
        return typo
    folded = name.lower().replace("-", "_")
    if folded in valid:
        return folded
    # The closest by difflib's ratio (its usual cutoff 0.6); ties go to the earlier name.
    best, best_ratio = None, 0.0
    for candidate in valid:
        ratio = difflib.SequenceMatcher(None, folded, candidate).ratio()
        if ratio >= 0.6 and ratio > best_ratio:
            best, best_ratio = candidate, ratio
    if best is not None:
        return best
    containing = [c for c in valid if len(folded) >= 4 and (folded in c or c in folded)]
    return min(containing, key=len) if containing else None


def parse_options(
    given: Mapping[str, object],
    *,
    is_async: bool,
    models: tuple[str, ...] = (),
    parameters: Collection[str] = (),
) -> dict[str, Any]:
    """Every option by name, validated: the given value or the default.

    Unknown names raise ``TypeError`` with a suggestion among the options and ``parameters``.
    """
    check_option_names(given, parameters=parameters)
    context = OptionContext(is_async=is_async, models=models)
    return {
        name: option.check(given.get(name, option.default), context)
        for name, option in OPTIONS.items()
    }
