"""Same-model retry policy, as tenacity strategies: which errors retry, when to stop, how long to wait.

The strategies are tenacity's own objects (``retry_if_exception``, ``stop_after_attempt``) and two
small ``wait`` classes of ours. They are consulted only after an attempt has failed, so the success
path never pays for them: driving tenacity's own loop costs about 30 µs per call (measured here),
six times this library's whole overhead budget.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import openai
from tenacity import RetryCallState, Retrying
from tenacity.retry import retry_base, retry_if_exception
from tenacity.stop import stop_after_attempt, stop_base
from tenacity.wait import wait_base

from ._config import ModelSettings
from ._numbers import DEFAULT_RETRY_AFTER_CAP as DEFAULT_RETRY_AFTER_CAP  # its home is _numbers
from ._numbers import MAX_WAIT

#: HTTP statuses worth another attempt on the same model (as the SDK itself retries them).
TRANSIENT_STATUSES: Final = frozenset({408, 409, 429})


def is_transient(exc: BaseException) -> bool:
    """Timeouts, connection errors, 408, 409, 429 and 5xx: retry the same model."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in TRANSIENT_STATUSES or exc.status_code >= 500
    return False


def status_of(exc: BaseException) -> int | None:
    return exc.status_code if isinstance(exc, openai.APIStatusError) else None


def retry_after_seconds(exc: BaseException | None, *, now: float | None = None) -> float | None:
    """The server's requested wait: ``retry-after-ms``, else ``Retry-After`` (seconds or HTTP date).

    ``None`` when absent, unparseable or not positive. ``now`` is the wall clock for HTTP dates.
    """
    if not isinstance(exc, openai.APIStatusError):
        return None
    headers = exc.response.headers
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            value = float(raw_ms) / 1000.0
        except ValueError:
            value = 0.0
        if value > 0:
            return value
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        value = when.timestamp() - (time.time() if now is None else now)
    return value if value > 0 else None


def _failure(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome is not None else None


class wait_backoff_power(wait_base):
    """``backoff ** k`` after the k-th failed attempt (the original SDK's schedule).

    Never longer than ``MAX_WAIT`` (``init`` refuses a schedule that would reach it, so this
    only guards configurations built around ``init``); never an ``OverflowError``.
    """

    def __init__(self, backoff: float) -> None:
        self.backoff = backoff

    def __call__(self, retry_state: RetryCallState) -> float:
        try:
            wait = float(self.backoff**retry_state.attempt_number)
        except OverflowError:
            return MAX_WAIT
        return wait if wait <= MAX_WAIT else MAX_WAIT


class wait_jitter(wait_base):
    """The ``base`` wait shortened by a random fraction in ``[0, jitter)``: ``base * (1 - jitter * u)``.

    ``uniform`` returns ``u`` in ``[0, 1)``; the manager passes its own seeded generator, so
    jittered schedules are reproducible (tenacity's own jitter uses the global ``random``).
    """

    def __init__(self, base: wait_base, jitter: float, uniform: Callable[[], float]) -> None:
        self.base = base
        self.jitter = jitter
        self.uniform = uniform

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.base(retry_state) * (1.0 - self.jitter * self.uniform())


class wait_retry_after_or(wait_base):
    """The ``base`` wait, raised to the server's ``Retry-After`` when that is longer."""

    def __init__(self, base: wait_base) -> None:
        self.base = base

    def __call__(self, retry_state: RetryCallState) -> float:
        wait = self.base(retry_state)
        server = retry_after_seconds(_failure(retry_state))
        return wait if server is None else max(wait, server)


class stop_if_retry_after_exceeds(stop_base):
    """Give up on this model when the server asks for a wait beyond ``cap`` seconds."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> bool:
        server = retry_after_seconds(_failure(retry_state))
        return server is not None and server > self.cap


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """What happens after a failed attempt of one model: another attempt after a wait, or not."""

    retry: retry_base
    stop: stop_base
    wait: wait_base

    def new_state(self, started: float) -> RetryCallState:
        """The decision state of one model's attempts in one call, started at ``started``.

        It lives as long as the call stays on that model, and every timestamp in it is the
        manager's clock (tenacity would read ``time.monotonic``), so time-based stops work in
        virtual time too.
        """
        state = RetryCallState(_DECIDER, fn=None, args=(), kwargs={})
        state.start_time = started
        return state

    def delay_after(
        self, state: RetryCallState, attempt: int, exc: BaseException, now: float
    ) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to leave this model."""
        state.attempt_number = attempt
        state.set_exception((type(exc), exc, exc.__traceback__))
        state.outcome_timestamp = now
        if not self.retry(state) or self.stop(state):
            return None
        wait = float(self.wait(state))
        state.idle_for += wait
        return wait


#: tenacity's state objects want a controller; the policy only reads strategies, never runs it.
_DECIDER: Final = Retrying()


def build_policy(
    settings: ModelSettings,
    *,
    retry_after_cap: float,
    jitter: float = 0.0,
    uniform: Callable[[], float] | None = None,
) -> RetryPolicy:
    """The policy of one model: SPEC 4.3/4.4, plus optional jitter on the backoff."""
    backoff: wait_base = wait_backoff_power(settings.backoff)
    if jitter > 0:
        assert uniform is not None, "jitter needs a source of uniform draws"
        backoff = wait_jitter(backoff, jitter, uniform)
    return RetryPolicy(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(settings.max_attempts)
        | stop_if_retry_after_exceeds(retry_after_cap),
        wait=wait_retry_after_or(backoff),
    )
