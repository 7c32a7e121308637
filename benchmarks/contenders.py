"""The contenders that run in this process: the plain SDK, a tenacity loop, and this library.

The original NotDiamond SDK 0.4.12 runs in its own virtualenv (``original_sdk_runner.py``).
Each contender gets the same two fake-backed clients (SDK defaults, 10 s timeout) and sends the same
logical request; see ``scenarios.py`` for the faults they meet.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from typing import Any, Final

import openai
from tenacity import retry, stop_after_attempt, wait_random_exponential

import notdiamond
from benchmarks.fake_provider import MESSAGES
from benchmarks.scenarios import BACKOFF, MAX_RETRIES, MODELS, TIMEOUT, Contender, VirtualClock


@contextlib.contextmanager
def plain_sdk(
    primary: openai.OpenAI, secondary: openai.AzureOpenAI, clock: VirtualClock
) -> Iterator[Callable[[], object]]:
    """The OpenAI SDK alone: its built-in retries (2 by default), one provider, no fallback."""

    def call() -> object:
        return primary.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    yield call


@contextlib.contextmanager
def tenacity_loop(
    primary: openai.OpenAI, secondary: openai.AzureOpenAI, clock: VirtualClock
) -> Iterator[Callable[[], object]]:
    """A tenacity loop around ``create`` as users write it: the OpenAI cookbook's recipe.

    ``wait_random_exponential(min=1, max=60)``, ``stop_after_attempt(6)``, retry on any error; the
    SDK's own retries stay at their default, as in the recipe. One provider, no fallback.
    """

    @retry(wait=wait_random_exponential(min=1, max=60), stop=stop_after_attempt(6))
    def completion_with_backoff() -> object:
        return primary.chat.completions.create(model="gpt-4o", messages=MESSAGES)  # type: ignore[arg-type]

    yield completion_with_backoff


@contextlib.contextmanager
def this_library(
    primary: openai.OpenAI, secondary: openai.AzureOpenAI, clock: VirtualClock
) -> Iterator[Callable[[], object]]:
    """``notdiamond.init`` over both clients: 3 attempts per model, backoff 2, then fall back."""
    with notdiamond.init([primary, secondary], models=MODELS, **default_options()):

        def call() -> object:
            return primary.chat.completions.create(model="notdiamond", messages=MESSAGES)  # type: ignore[arg-type]

        yield call


#: Attempts per model in the recommended settings: one retry, then the fallback. A third attempt
#: on a model that failed twice costs a whole timeout when the model is slow (10 s here), which the
#: fallback answers in 0.5 s; and three attempts of 10 s do not fit a deadline that beats the plain
#: SDK's slow-provider tail (its three attempts end near 31 s). Two models x two attempts still
#: retry more than the SDK's three requests to one provider.
RECOMMENDED_MAX_RETRIES: Final = 2

#: Backoff of the recommended settings: the wait before a model's second attempt is ``backoff ** 1``
#: = 0.5 s, the OpenAI SDK's own first wait (0.5 s doubling, each wait cut by up to 25%). The seed's
#: ``backoff=2`` waits 2 s then 4 s: under flaky 5xx that tail (p99 6.7 s) is three times the SDK's
#: (2.0 s). With the breaker on, a long backoff is no longer what protects a failing provider: the
#: breaker stops the traffic to a model that keeps failing.
RECOMMENDED_BACKOFF: Final = 0.5

#: Jitter of the recommended settings: each wait shortened by up to 25% at random, as the SDK does,
#: so callers that failed together do not retry together.
RECOMMENDED_JITTER: Final = 0.25

#: Whole-call deadline of the recommended settings: two full attempts of the primary (10 s timeout
#: each) with the 0.5 s wait between them end by 20.5 s; the 4.5 s left hold the fallback's answer
#: (0.5 s typical, under 1.5 s at p99.9 here) and one retry of it. In general: 2 x timeout + ~5 s.
RECOMMENDED_DEADLINE: Final = 25.0


#: First-chunk timeout of the recommended settings (streams): a healthy first chunk comes in about
#: 0.5 s (log-normal, sigma 0.3), so 2 s cuts only stalls.
RECOMMENDED_FIRST_CHUNK: Final = 2.0


def option_available(name: str) -> bool:
    """Whether this build of the library's ``init`` takes the option ``name``."""
    return name in getattr(getattr(notdiamond, "InitOptions", None), "__annotations__", {})


def breaker_available() -> bool:
    """Whether this build of the library has the circuit breaker (``notdiamond.CircuitBreaker``)."""
    return hasattr(notdiamond, "CircuitBreaker")


def default_options() -> dict[str, Any]:
    """``notdiamond.init``'s arguments beyond clients and models in the default row: the original
    SDK's (3 attempts per model, backoff 2) and the shared 10 s timeout."""
    return {"max_retries": MAX_RETRIES, "timeout": TIMEOUT, "backoff": BACKOFF}


def recommended_options() -> dict[str, Any]:
    """The recommended row's arguments to ``notdiamond.init`` beyond clients and models, exactly
    as the README's "Recommended for production" block writes them (a test holds them equal):
    fewer, shorter, jittered retries, a breaker (when this build has one), a deadline, a
    first-chunk timeout. Time-based strategies read the run's clock (``clock=``, added by the
    drivers)."""
    options: dict[str, Any] = {
        "max_retries": RECOMMENDED_MAX_RETRIES,
        "timeout": TIMEOUT,
        "backoff": RECOMMENDED_BACKOFF,
        "jitter": RECOMMENDED_JITTER,
    }
    if breaker_available():
        options["circuit_breaker"] = True
    options["deadline"] = RECOMMENDED_DEADLINE
    if option_available("first_chunk_timeout"):
        options["first_chunk_timeout"] = RECOMMENDED_FIRST_CHUNK
    return options


@contextlib.contextmanager
def this_library_recommended(
    primary: openai.OpenAI, secondary: openai.AzureOpenAI, clock: VirtualClock
) -> Iterator[Callable[[], object]]:
    """``notdiamond.init`` with :func:`recommended_options`, on the run's virtual clock.

    The scenario driver sends one logical request at a time and sets the clock back to each one's
    arrival, so state shared across calls (the breaker) sees the calls as if they overlapped.
    """
    with notdiamond.init(
        [primary, secondary],
        models=MODELS,
        clock=lambda: clock.now,
        # The jitter's draws, from the global generator that the driver seeds per run: the same
        # waits on every run of the same seed.
        seed=random.getrandbits(32),
        **recommended_options(),
    ):

        def call() -> object:
            return primary.chat.completions.create(model="notdiamond", messages=MESSAGES)  # type: ignore[arg-type]

        yield call


#: Hedge delay of the hedged real-time row: a healthy answer comes in about 0.5 s (log-normal,
#: sigma 0.3), so after 2 s without one a parallel attempt on the fallback starts.
HEDGE_DELAY: Final = 2.0


def hedged_options() -> dict[str, Any] | None:
    """The recommended options plus hedging (async clients only, so real time only), or None on
    a build without ``hedge=``."""
    if not option_available("hedge"):
        return None
    return {**recommended_options(), "hedge": notdiamond.Hedge(delay=HEDGE_DELAY)}


def recommended_label() -> str:
    parts = [f"{RECOMMENDED_MAX_RETRIES} attempts, backoff {RECOMMENDED_BACKOFF:g}"]
    parts += (["breaker"] if breaker_available() else []) + [f"deadline {RECOMMENDED_DEADLINE:g} s"]
    if option_available("first_chunk_timeout"):
        parts.append(f"first chunk {RECOMMENDED_FIRST_CHUNK:g} s")
    return f"notdiamond {notdiamond.__version__}, recommended ({', '.join(parts)})"


#: The original NotDiamond SDK: run out of process, see ``original_sdk.py``.
ORIGINAL_SDK: Final = "notdiamond 0.4.12"
THIS_LIBRARY: Final = f"notdiamond {notdiamond.__version__} (this)"
THIS_LIBRARY_RECOMMENDED: Final = recommended_label()

PLAIN_SDK: Final = "openai SDK (built-in retries)"

IN_PROCESS: Final[dict[str, Contender]] = {
    PLAIN_SDK: plain_sdk,
    "tenacity loop (cookbook)": tenacity_loop,
    THIS_LIBRARY: this_library,
    THIS_LIBRARY_RECOMMENDED: this_library_recommended,
}
