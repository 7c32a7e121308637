"""The health strategies in a chaos run: their scenario options and the recording of their decisions.

A scenario's ``config`` may switch on the runtime's circuit breaker, retry budget and whole-call
deadline with the same names as ``notdiamond.init``:

- ``"circuit_breaker"``: ``true`` (the defaults) or an object of ``notdiamond.CircuitBreaker``'s
  fields, e.g. ``{"consecutive_failures": 3, "break_duration": 5}``;
- ``"retry_budget"``: ``true`` or an object of ``notdiamond.RetryBudget``'s fields;
- ``"deadline"``: seconds per call.

:func:`init_options` turns them into what ``init`` takes (the option objects are built and
validated by the runtime's own code, ``notdiamond._options.OPTIONS``). :func:`recording` is a
``with`` block during which every manager built by ``notdiamond.init`` gets the reference
recorders of :mod:`chaos.reference.recorder` installed on its breaker and budget strategies, so the
checks can replay each decision through the independent reference models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

#: The health options a scenario's ``config`` may carry (besides the per-model settings).
HEALTH_FIELDS: Final = frozenset({"circuit_breaker", "retry_budget", "deadline"})


def init_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The health options of ``config`` as ``notdiamond.init`` takes them (objects built)."""
    import notdiamond

    out: dict[str, Any] = {}
    for name, cls in (
        ("circuit_breaker", notdiamond.CircuitBreaker),
        ("retry_budget", notdiamond.RetryBudget),
    ):
        value = config.get(name)
        if isinstance(value, Mapping):
            try:
                out[name] = cls(**value)
            except TypeError as exc:
                raise ValueError(
                    f"{name}: {exc}; the fields are those of notdiamond.{cls.__name__}."
                ) from None
        elif value is not None:
            out[name] = value
    if config.get("deadline") is not None:
        out["deadline"] = config["deadline"]
    return out


def validate(config: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the health options with the runtime's own option table; return them parsed."""
    from notdiamond._options import OPTIONS, OptionContext

    given = init_options(config)
    return {
        name: OPTIONS[name].check(given.get(name), OptionContext(False)) for name in HEALTH_FIELDS
    }


def breaker_of(config: Mapping[str, Any]) -> Any:
    """The scenario's ``notdiamond.CircuitBreaker`` (``None``: off)."""
    return validate(config)["circuit_breaker"]


def budget_of(config: Mapping[str, Any]) -> Any:
    """The scenario's ``notdiamond.RetryBudget`` (``None``: off)."""
    return validate(config)["retry_budget"]


def deadline_of(config: Mapping[str, Any]) -> float | None:
    value = validate(config)["deadline"]
    return None if value is None else float(value)


@dataclass
class HealthRecording:
    """What the runtime's health strategies were asked and answered during one run."""

    #: One :class:`chaos.reference.recorder.BreakerRecorder` per manager with a breaker.
    breakers: list[Any] = field(default_factory=list)
    #: One :class:`chaos.reference.recorder.BudgetRecorder` per manager with a budget.
    budgets: list[Any] = field(default_factory=list)


@contextlib.contextmanager
def recording() -> Iterator[HealthRecording]:
    """Record the decisions of every breaker and budget that ``notdiamond.init`` assembles here.

    The seam is ``notdiamond._init.assemble`` (the strategies' assembly, called once per ``init``):
    the recorders wrap the hooks of the strategy instances it returns, before any call is made.
    """
    from notdiamond import _init
    from notdiamond._strategies import assemble as original
    from notdiamond._strategies.breaker import CircuitBreakerStrategy
    from notdiamond._strategies.budget import RetryBudgetStrategy

    from .monkeypatch import swapped
    from .reference.recorder import BreakerRecorder, BudgetRecorder

    rec = HealthRecording()

    def assemble(*args: Any, **kwargs: Any) -> Any:
        strategies = original(*args, **kwargs)
        for strategy in strategies:
            if isinstance(strategy, CircuitBreakerStrategy):
                rec.breakers.append(BreakerRecorder(strategy))
            elif isinstance(strategy, RetryBudgetStrategy):
                rec.budgets.append(BudgetRecorder(strategy))
        return strategies

    with swapped(_init, "assemble", assemble):
        yield rec
