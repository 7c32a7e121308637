"""The state of one logical call, and every decision taken on it (shared by the sync and async drivers).

One :class:`CallState` per call: which model and attempt, what failed, its deadline, and the
per-model retry state on the manager's clock. The drivers in ``_pipeline`` only carry decisions out:
send an attempt, sleep, or raise.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
from typing import TYPE_CHECKING, Any, Final

from openai import APIConnectionError, APITimeoutError, NotGiven

from ._deadline import DeadlineExceeded, block_deadline
from ._events import AttemptEvent, Decision, FailureRecord
from ._failures import FAILURES_ATTR
from ._log import log_fields
from ._policy import status_of
from ._sdk import placeholder_request

if TYPE_CHECKING:
    from tenacity import RetryCallState

    from ._assembly import Pipeline
    from ._sdk import FinalRequestOptions

logger = logging.getLogger("notdiamond")

_call_ids: Final = itertools.count(1)


class CallState:
    """One logical call: which model, which attempt, what failed so far, and until when it may run."""

    __slots__ = (
        "attempt",
        "attempt_started",
        "body",
        "call_id",
        "cast_to",
        "clamped",
        "client",
        "deadline",
        "failures",
        "key",
        "options",
        "origin",
        "pipeline",
        "probing",
        "retry_state",
        "sent",
        "skipped",
        "started",
        "stream",
        "stream_cls",
        "timed",
        "timeout",
        "tracked",
        "wait_before",
    )

    deadline: float | None
    probing: str | None
    failures: list[FailureRecord]
    skipped: list[str]
    retry_state: RetryCallState | None

    def __init__(
        self,
        pipeline: Pipeline,
        origin: Any,
        client: Any,
        key: str,
        cast_to: Any,
        options: FinalRequestOptions,
        stream: bool,
        stream_cls: Any,
    ) -> None:
        self.pipeline = pipeline
        self.origin = origin  # the wrapper whose client (``client``, or a copy of it) was called
        self.client = client
        self.cast_to = cast_to
        self.options = options
        self.stream = stream
        self.stream_cls = stream_cls
        self.body: dict[str, Any] = options.json_data  # type: ignore[assignment]  # routed dicts only
        caller_timeout = options.timeout
        self.timeout = None if caller_timeout.__class__ is NotGiven else (caller_timeout,)
        self.key = key
        limit = block_deadline.get()
        # What only failures need is set up when first needed (see _track).
        self.tracked = False
        # Reading the clock is needed only by strategies, observers and deadlines.
        if not (pipeline.timed or limit is not None):
            self.timed = False
            return
        # A timed call starts: its state, its start on the clock, its deadline, its admission.
        self.timed = True
        self.attempt = 1
        self.sent = 0
        self.clamped = False
        self.probing = None
        asked = pipeline.asked_about
        if limit is None and asked is not None and key not in asked:
            # The success path: every strategy admits the model as it is, and nothing reads
            # when the call started. Its id is given if it fails (see _track).
            self.call_id = 0
            self.started = self.attempt_started = 0.0
            self.deadline = None
            return
        self.call_id = next(_call_ids)
        now = self.started = self.attempt_started = pipeline.clock()
        deadline = pipeline.deadline
        if limit is not None and (deadline is None or limit < deadline):
            deadline = limit
        if deadline is None:
            self.deadline = None
        else:  # a deadline below the clock's resolution still leaves the first attempt a time
            self.deadline = now + deadline
            if self.deadline <= now:
                self.deadline = math.nextafter(now, math.inf)
        unsettled = pipeline.unsettled
        if pipeline.admit_by and (unsettled is None or key in unsettled):
            self._admit_first(now)

    def _track(self) -> None:
        """Set up the state that failures read (and, for a call that is not timed, the rest of
        what strategies and observers read: a timed call set that up when it began)."""
        self.tracked = True
        self.wait_before = 0.0
        self.failures = []
        self.skipped = []
        self.retry_state = None
        if not self.timed:
            self.call_id = next(_call_ids)
            self.attempt = 1
            self.started = 0.0
            self.attempt_started = 0.0
            self.deadline = None
            self.clamped = False
            self.probing = None
            self.sent = 0
        elif not self.call_id:  # it began on the success path, without an id
            self.call_id = next(_call_ids)

    def branch(self, lane: CallState, key: str) -> None:
        """Make ``lane`` (an uninitialised instance) a parallel line of attempts of this call.

        For hedged requests: the lane shares the call's identity, deadline, failures and skipped
        models (one list each), and has its own model ``key``, attempt count, retry state and a
        copy of the request options (attempts in flight at once must not share them).
        """
        if not self.tracked:
            self._track()
        lane.pipeline = self.pipeline
        lane.origin = self.origin
        lane.client = self.client
        lane.cast_to = self.cast_to
        lane.options = copy.copy(self.options)
        lane.stream = self.stream
        lane.stream_cls = self.stream_cls
        lane.body = self.body
        lane.timeout = self.timeout
        lane.timed = lane.tracked = True
        lane.call_id = self.call_id
        lane.started = self.started
        lane.deadline = self.deadline
        lane.failures = self.failures
        lane.skipped = self.skipped
        lane.key = key
        lane.attempt = 1
        lane.wait_before = 0.0
        lane.attempt_started = 0.0
        lane.clamped = False
        lane.probing = None
        lane.retry_state = None

    # -- the start of a call -----------------------------------------------------------------
    def _admit_first(self, now: float) -> None:
        """The strategies' admission of the call's first model (or of the next one admitted)."""
        self._track()
        key = self._admitted(self.key, now)
        if key is None:  # nothing admitted and nothing to probe
            raise self._time_up_or_unavailable()
        self.key = key

    @property
    def failed(self) -> set[str]:
        """Every model given up on in this call: failed ones and skipped ones."""
        if not self.tracked:
            return set()
        return {k for k, _, _ in self.failures}.union(self.skipped)

    def _admitted(self, key: str | None, now: float) -> str | None:
        """``key`` if the strategies admit it, else the next admitted model (or a last resort)."""
        pipeline = self.pipeline
        unsettled = pipeline.unsettled
        while key is not None:
            if unsettled is not None and key not in unsettled:
                return key  # admitted as it is (see FastPath.unsettled)
            verdict = "admit"
            for strategy in pipeline.admit_by:
                verdict = strategy.admit(self, key, now)
                if verdict != "admit":
                    break
            if verdict == "admit":
                return key
            if verdict == "probe":
                self.probing = key
                return key
            self.skipped.append(key)
            key = self._untried()
        if self.sent == 0:
            for strategy in pipeline.last_resort_by:
                key = strategy.last_resort(self, tuple(self.skipped), now)
                if key is not None:
                    self.probing = key
                    return key
        return None

    # -- one attempt -------------------------------------------------------------------------
    def attempt_kwargs(self) -> dict[str, Any]:
        """The ``create`` keyword arguments of the next attempt (SPEC 4.2)."""
        settings = self.pipeline.settings[self.key]
        kwargs = dict(self.body)
        kwargs["model"] = settings.model
        if settings.messages:
            kwargs["messages"] = [*settings.messages, *self.body.get("messages", ())]
        timeout = settings.timeout if self.timeout is None else self.timeout[0]
        if self.timed:
            if self.sent or self.deadline is not None or self.pipeline.attempt_started_by:
                timeout = self._attempt_starts(timeout)
            else:  # the call's first attempt starts when the call did: nothing to cut or tell
                self.attempt_started = self.started
                self.sent = 1
        kwargs["timeout"] = timeout
        return kwargs

    def _attempt_starts(self, timeout: Any) -> Any:
        """Record the attempt's start; cut its timeout to the time left before the deadline."""
        pipeline = self.pipeline
        # The call's first attempt starts when the call does (nothing happens in between).
        now = self.attempt_started = self.started if self.sent == 0 else pipeline.clock()
        if self.deadline is not None:
            left = self.deadline - now
            if left <= 0:
                self.abandoned()  # a probe granted for this attempt is released, never sent
                raise self._time_up_or_unavailable()
            self.clamped = not isinstance(timeout, int | float) or left < timeout
            if self.clamped:
                timeout = left
        for strategy in pipeline.attempt_started_by:
            strategy.attempt_started(self, self.key, self.attempt, now)
        self.sent += 1
        return timeout

    def succeeded(self) -> None:
        pipeline = self.pipeline
        if pipeline.attempt_succeeded_by:
            now = pipeline.clock()
            record = pipeline.record_success
            if record is not None and self.probing is None:
                record[self.key](now)  # what the hook does here (see FastPath.succeeded)
            else:
                if not self.call_id:
                    self.call_id = next(_call_ids)  # it began on the success path, without an id
                for strategy in pipeline.attempt_succeeded_by:
                    strategy.attempt_succeeded(self, self.key, now)
        if pipeline.observer is not None:
            if not self.tracked:
                self._track()
            self._emit("success", None, None)

    def abandoned(self) -> None:
        """The attempt ended by a ``BaseException``: strategies release what it took."""
        abandoned_by = self.pipeline.attempt_abandoned_by
        if abandoned_by and not self.call_id:
            self.call_id = next(_call_ids)  # it began on the success path, without an id
        for strategy in abandoned_by:
            strategy.attempt_abandoned(self, self.key)

    def failed_with(self, exc: Exception) -> float | None:
        """Decide after a failed attempt: the wait before the next one, or ``None`` to raise."""
        pipeline = self.pipeline
        if not self.tracked:
            self._track()
        key, attempt = self.key, self.attempt
        self.failures.append((key, attempt, exc))
        now = pipeline.clock() if self.timed else 0.0
        for strategy in pipeline.attempt_failed_by:
            strategy.attempt_failed(self, key, exc, now)
        wait = None if self.probing == key else self._policy_wait(exc, now)
        if wait is not None and self.deadline is not None and now + wait >= self.deadline:
            wait = None  # a wait that ends at or after the deadline is not taken
        if wait is not None:
            for strategy in pipeline.allow_retry_by:
                if not strategy.allow_retry(self, key, wait, now):
                    wait = None
                    break
        next_key: str | None = key
        decision: Decision = "retry"
        if wait is None:
            next_key = self._fallback(now)
            decision = self._nothing_left() if next_key is None else "fallback"
        level = logging.INFO if decision == "retry" else logging.WARNING
        if logger.isEnabledFor(level):
            self._log(level, exc, decision, next_key, wait)
        if pipeline.observer is not None:
            self._emit(decision, exc, wait)
        if next_key is None:
            return None
        if wait is None:
            self.key, self.attempt, wait, self.retry_state = next_key, 1, 0.0, None
        else:
            self.attempt += 1
        self.wait_before = wait
        return wait

    def _policy_wait(self, exc: Exception, now: float) -> float | None:
        policy = self.pipeline.policies[self.key]
        state = self.retry_state
        if state is None:
            state = self.retry_state = policy.new_state(self.attempt_started if self.timed else 0.0)
        return policy.delay_after(state, self.attempt, exc, now)

    def _fallback(self, now: float) -> str | None:
        """The next model once the current one is given up on; ``None`` when none is left."""
        if self.probing == self.key:
            self.probing = None
        if self.deadline is not None and now >= self.deadline:
            return None
        return self._admitted(self._untried(), now)

    def _untried(self) -> str | None:
        """The fallback choice (SPEC 4.5): a model not yet given up on in this call."""
        return self.pipeline.next_model(self.failed)

    def _nothing_left(self) -> Decision:
        """The decision when a failed model has no fallback: the error reaches the caller."""
        return "raise"

    def waited(self) -> bool:
        """After a wait: may the retry go ahead? If not, the call has moved on to a fallback."""
        pipeline = self.pipeline
        now = pipeline.clock()
        for strategy in pipeline.readmit_by:
            if not strategy.readmit(self, self.key, now):
                break
        else:
            return True
        next_key = self._fallback(now)
        if next_key is None:
            # The retry announced after the last attempt will not be sent and no model is left:
            # the call ends here, and the observer learns it (its last event said "retry").
            self.attempt -= 1
            if pipeline.observer is not None:
                self.attempt_started = now
                self._emit("raise", self.failures[-1][2], None)
            return False
        self.key, self.attempt, self.wait_before, self.retry_state = next_key, 1, 0.0, None
        return True

    # -- the end of a call -------------------------------------------------------------------
    def final_error(self) -> Exception:
        """The error the caller receives: the last one, of its own SDK type, failures attached.

        A timeout of an attempt that the deadline had cut short becomes :class:`DeadlineExceeded`.
        """
        last = self.failures[-1][2]
        if self.clamped and self.deadline is not None and isinstance(last, APITimeoutError):
            deadline_error = self._deadline_error()
            deadline_error.__cause__ = last
            last = deadline_error
        return attach_failures(last, self.failures)

    def _time_up_or_unavailable(self) -> Exception:
        """No attempt can be sent now: the call's final error if it has failures, else a
        deadline error (time is up) or :class:`ModelsUnavailable` (every model was skipped)."""
        if not self.tracked:
            self._track()
        if self.failures:
            return self.final_error()
        if self.deadline is not None:
            error: Exception = self._deadline_error()
        else:
            error = ModelsUnavailable(placeholder_request(self.client, self.options))
        return attach_failures(error, self.failures)

    def _deadline_error(self) -> DeadlineExceeded:
        assert self.deadline is not None
        return DeadlineExceeded(
            self.deadline - self.started, placeholder_request(self.client, self.options)
        )

    # -- reporting ---------------------------------------------------------------------------
    def _emit(self, decision: Decision, exc: Exception | None, wait: float | None) -> None:
        pipeline = self.pipeline
        assert pipeline.observer is not None
        event = AttemptEvent(
            call_id=self.call_id,
            model=self.key,
            provider=pipeline.settings[self.key].provider,
            attempt=self.attempt,
            started=self.attempt_started,
            finished=pipeline.clock(),
            wait_before=self.wait_before,
            decision=decision,
            error=exc,
            status_code=None if exc is None else status_of(exc),
            next_wait=wait if decision == "retry" else None,
        )
        try:
            pipeline.observer(event)
        except Exception:  # an observer's failure is never the call's
            logger.exception("call %d: the observer raised; the call goes on", self.call_id)

    def _log(
        self,
        level: int,
        exc: Exception,
        decision: Decision,
        next_key: str | None,
        wait: float | None,
    ) -> None:
        status = status_of(exc)
        then = {
            "retry": f"retrying in {wait or 0.0:.3f}s",
            "fallback": f"falling back to {next_key}",
            "hedge": "another attempt of the call is still running",
            "raise": "no model left; raising it",
            "success": "",
        }[decision]
        logger.log(
            level,
            "call %d: %s attempt %d/%d failed with %s%s; %s",
            self.call_id,
            self.key,
            self.attempt,
            self.pipeline.settings[self.key].max_attempts,
            type(exc).__name__,
            "" if status is None else f" (HTTP {status})",
            then,
            extra=log_fields(self.call_id, self.attempt, self.key),
        )


class ModelsUnavailable(APIConnectionError):
    """No configured model could be tried (every one skipped by a strategy) and nothing was sent."""

    def __init__(self, request: object) -> None:
        super().__init__(
            message="notdiamond: no configured model is available (every one was skipped).",
            request=request,  # type: ignore[arg-type]
        )


def attach_failures(error: Exception, failures: list[FailureRecord]) -> Exception:
    """Attach a call's failures to the error its caller receives (attribute and, 3.11+, a note)."""
    setattr(error, FAILURES_ATTR, tuple(failures))
    earlier = [f for f in failures if f[2] is not error]
    if earlier:
        text = "; ".join(
            f"{key} attempt {n}: {type(e).__name__}"
            + (f" ({status_of(e)})" if status_of(e) is not None else "")
            for key, n, e in earlier
        )
        add_note = getattr(error, "add_note", None)  # Python 3.11+
        if add_note is not None:
            add_note(f"notdiamond: every configured model failed. Earlier: {text}")
    return error
