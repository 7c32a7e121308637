"""Broken hedging (``hedge=``, issue 9 section 3): the hedge checks must catch each.

Seams: ``notdiamond._hedge_options.Hedging.delay_for`` (the delay before an attempt is hedged)
and the async wrapper's ``_default_create`` (one attempt, SPEC 5), as in ``chaos.mutants``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from .monkeypatch import swapped
from .scenario import Scenario

#: How far the mis-timed mutant moves the delay (a factor).
DELAY_FACTOR = 1.10


@contextlib.contextmanager
def _hedge_never_fires() -> Iterator[dict[str, Any]]:
    """The hedge timer never runs out: no extra attempt is ever sent."""
    from notdiamond._hedge_options import Hedging

    def never(self: Any, key: str) -> float:
        return 1e6

    with swapped(Hedging, "delay_for", never):
        yield {}


@contextlib.contextmanager
def _hedge_delay_off() -> Iterator[dict[str, Any]]:
    """The hedge fires 10% later than ``delay``."""
    from notdiamond._hedge_options import Hedging

    original = Hedging.delay_for

    def later(self: Any, key: str) -> float:
        return original(self, key) * DELAY_FACTOR

    with swapped(Hedging, "delay_for", later):
        yield {}


@contextlib.contextmanager
def _loser_not_cancelled() -> Iterator[dict[str, Any]]:
    """An attempt that lost the race is not cancelled: its request runs on to its answer."""
    from notdiamond.toolkit import _retry

    cls = _retry.AsyncRetryWrapper
    base: Any = cls.__mro__[1]
    original = base._default_create

    def shielded(self: Any, **kwargs: Any) -> Any:
        task = asyncio.ensure_future(original(self, **kwargs))

        async def attempt() -> Any:
            return await asyncio.shield(task)

        return attempt()

    with swapped(cls, "_default_create", shielded):
        yield {}


def _delay_off_size(scenario: Scenario) -> int:
    """Requests for the binomial test to see the hedge share of a 10% later delay, at power
    0.999 (sized at 0.99 it missed 1 of 17 fresh seeds)."""
    from .checks.hedging import p_hedge
    from .power import binomial_sample_size

    delay = scenario.hedge_delay
    assert delay is not None
    p0 = p_hedge(scenario, delay)
    delta = abs(p0 - p_hedge(scenario, delay * DELAY_FACTOR))
    return binomial_sample_size(p0, delta=delta, power=0.999)


def hedge_mutants() -> list[Any]:
    from .mutants import Mutant

    scenario = "hedge-slow-primary"
    return [
        Mutant(
            "hedge_never_fires",
            "the hedge never fires (no extra attempt)",
            scenario,
            "hedge_rate",
            _hedge_never_fires,
            n=100,
        ),
        Mutant(
            "hedge_delay_off",
            "the hedge fires 10% after its delay",
            scenario,
            "hedge_rate",
            _hedge_delay_off,
            statistical=True,
            sizer=_delay_off_size,
        ),
        Mutant(
            "hedge_loser_not_cancelled",
            "the attempt that lost the race is not cancelled (its request completes)",
            scenario,
            "hedge_losers_cancelled",
            _loser_not_cancelled,
            n=200,
        ),
    ]
