"""The contenders that run in this process: the plain SDK, a tenacity loop, and this library.

The original NotDiamond SDK 0.4.12 runs in its own virtualenv (``original_sdk_runner.py``).
Each contender gets the same two fake-backed clients (SDK defaults, 10 s timeout) and sends the same
logical request; see ``scenarios.py`` for the faults they meet.
"""

from __future__ import annotations

import contextlib
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
    with notdiamond.init(
        [primary, secondary],
        models=MODELS,
        max_retries=MAX_RETRIES,
        timeout=TIMEOUT,
        backoff=BACKOFF,
    ):

        def call() -> object:
            return primary.chat.completions.create(model="notdiamond", messages=MESSAGES)  # type: ignore[arg-type]

        yield call


#: Whole-call deadline of the recommended settings: two full attempts of the primary (10 s
#: timeout each) with the 2 s wait between them, and a fallback's answer, fit; the 4 s wait before
#: a third attempt does not (the call falls back instead of waiting).
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


def recommended_options() -> dict[str, Any]:
    """The options the README recommends on top of the seed's: a breaker (when this build has
    one) and a deadline. Time-based strategies read the run's virtual clock (``clock=``)."""
    options: dict[str, Any] = {"deadline": RECOMMENDED_DEADLINE}
    if breaker_available():
        options["circuit_breaker"] = True
    if option_available("first_chunk_timeout"):
        options["first_chunk_timeout"] = RECOMMENDED_FIRST_CHUNK
    return options


@contextlib.contextmanager
def this_library_recommended(
    primary: openai.OpenAI, secondary: openai.AzureOpenAI, clock: VirtualClock
) -> Iterator[Callable[[], object]]:
    """As ``this_library``, plus :func:`recommended_options`, on the run's virtual clock.

    The scenario driver sends one logical request at a time and sets the clock back to each one's
    arrival, so state shared across calls (the breaker) sees the calls as if they overlapped.
    """
    with notdiamond.init(
        [primary, secondary],
        models=MODELS,
        max_retries=MAX_RETRIES,
        timeout=TIMEOUT,
        backoff=BACKOFF,
        clock=lambda: clock.now,
        **recommended_options(),
    ):

        def call() -> object:
            return primary.chat.completions.create(model="notdiamond", messages=MESSAGES)  # type: ignore[arg-type]

        yield call


def recommended_label() -> str:
    parts = (["breaker"] if breaker_available() else []) + [f"deadline {RECOMMENDED_DEADLINE:g} s"]
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
