"""Plain-language findings of an ``--init`` run, derived from measured figures with fixed thresholds.

A finding is advice, never a failure: the exit status is the checks' (did the runtime do what the
configuration promises?); a finding says what the configuration costs under a fault and which
option would change it. Each one quotes the figure it rests on. The thresholds:

- :data:`SUCCESS_TARGET` (99.9%): a success rate below it under an outage, flaky 5xx, rate limits
  or a slow primary is advice (in a storm it is a note: some calls must fail there);
- :data:`FALLBACK_COST_S` (1 s): an outage that costs the calls that start on the down model more
  than this (attempts on it and the waits between them) before they fall back;
- :data:`WAIT_PER_CALL_S` (1 s): waiting (backoff and Retry-After) per call under flaky 5xx or rate
  limits;
- :data:`P99_S` (10 s): the 99th percentile of time to outcome under flaky 5xx or a slow primary,
  and in a storm (without a deadline);
- :data:`HTTP_PER_CALL` (2): HTTP requests per call in a storm without a retry budget;
- :data:`P99_S` again for stalled streams of async clients: above it, a smaller
  ``first_chunk_timeout`` is advised (sync clients wait a stall out in process: a note).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal

import numpy as np

from .checks.base import RunView
from .user_config import Captured
from .user_scenarios import UserScenario

SUCCESS_TARGET: Final = 0.999
FALLBACK_COST_S: Final = 1.0
WAIT_PER_CALL_S: Final = 1.0
P99_S: Final = 10.0
HTTP_PER_CALL: Final = 2.0

Level = Literal["advice", "ok", "note"]


@dataclass(frozen=True)
class Finding:
    scenario: str
    #: ``advice``: a threshold was crossed and an option would change it; ``ok``: within the
    #: thresholds; ``note``: a fact worth knowing that needs no change.
    level: Level
    text: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


# -- measurements ----------------------------------------------------------------------------
def measure(user: UserScenario, view: RunView) -> dict[str, float]:
    """What the findings of this kind of scenario rest on, from the fake providers' records."""
    n = max(len(view.requests), 1)
    out: dict[str, float] = {}
    transitions = view.trace.transitions if view.trace else []
    out["breaker_opened"] = sum(1 for t in transitions if str(t.after) == "open")
    if user.kind == "outage" and user.model is not None and user.window is not None:
        out.update(_outage(view, user.model, user.window))
    if user.kind == "rate-limits":
        cap = view.scenario.retry_after_cap
        pairs = view.wait_pairs()
        out["retry_after_wait_per_call_s"] = sum(p[1] for p in pairs if p[2]) / n
        over = sum(
            1
            for recs in view.http.values()
            for x in recs
            if x.outcome == "429" and x.retry_after is not None and x.retry_after > cap
        )
        out["left_for_retry_after_over_cap_per_call"] = over / n
    if user.kind == "stalled-streams":
        stalls = sum(1 for recs in view.http.values() for x in recs if x.source == "stall")
        out["stalls_per_call"] = stalls / n
        broken = sum(
            1
            for r in view.requests
            if any(e.kind == "stream_error" for e in view.endings.get(r, []))
        )
        out["broken_after_first_chunk"] = broken / n
    if user.kind == "slow-primary":
        lost = [
            x.end - x.start
            for recs in view.http.values()
            for x in recs
            if x.outcome == "read_timeout"
        ]
        hit = sum(
            1 for recs in view.http.values() if any(x.outcome == "read_timeout" for x in recs)
        )
        out["timeouts_per_call"] = len(lost) / n
        out["lost_to_timeouts_per_call_s"] = sum(lost) / n
        out["calls_with_a_timeout"] = hit / n
    return out


def _outage(view: RunView, model: str, window: tuple[float, float]) -> dict[str, float]:
    """Over the calls that started during the outage: how many started on the down model, reached
    it at all, stayed on it to the end (failed there, or the outage ended during their retries),
    and how long those that fell back spent on it first (``fallback_cost``)."""
    start, end = window
    costs: list[float] = []
    in_window = reached = to_down = started_on = stayed = 0
    for r in view.requests:
        recs = view.http.get(r, [])
        if not recs or not start <= recs[0].start < end:
            continue
        in_window += 1
        down = [x for x in recs if x.key == model]
        if down:
            reached += 1
            to_down += len(down)
        if recs[0].key == model:
            started_on += 1
            other = next((x for x in recs if x.key != model), None)
            if other is None:
                stayed += 1
            else:
                costs.append(other.start - recs[0].start)
    return {
        "calls_in_outage": in_window,
        "calls_started_on_down_model": started_on,
        "calls_that_reached_down_model": reached,
        "requests_to_down_model": to_down,
        "calls_that_stayed_on_down_model": stayed,
        "fallback_cost_mean_s": float(np.mean(costs)) if costs else 0.0,
        "fallback_cost_p99_s": float(np.percentile(costs, 99)) if costs else 0.0,
    }


# -- findings --------------------------------------------------------------------------------
def _s(x: float) -> str:
    return "n/a" if math.isnan(x) else f"{x:.1f} s" if x >= 0.95 else f"{x:.2f} s"


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if x < 0.9995 or x == 1 else f"{100 * x:.2f}%"


def findings_for(
    user: UserScenario,
    figures: dict[str, float],
    measures: dict[str, float],
    captured: Captured,
    baseline: dict[str, float] | None = None,
) -> list[Finding]:
    """The findings of one scenario (see the module doc for the thresholds); ``baseline``: the
    figures of the ``healthy`` scenario, quoted next to the p99 they compare with."""
    name = user.scenario.name
    config = captured.config
    scenario = user.scenario
    found: list[Finding] = []

    def add(level: Level, text: str) -> None:
        found.append(Finding(name, level, text))

    success, p99 = figures["success"], figures["p99_s"]
    healthy_p99 = f" (healthy: {_s(baseline['p99_s'])})" if baseline else ""
    wait, http = figures["wait_per_call_s"], figures["http_per_call"]
    breaker = config.get("circuit_breaker") not in (None, False)
    has_deadline = config.get("deadline") is not None
    opened = int(measures.get("breaker_opened", 0))

    if user.kind == "outage" and user.model is not None:
        key = user.model
        cost = measures["fallback_cost_mean_s"]
        backoff = scenario.backoffs[key]
        attempts = scenario.max_attempts[key]
        in_window = int(measures["calls_in_outage"])
        reached = int(measures["calls_that_reached_down_model"])
        started = int(measures["calls_started_on_down_model"])
        if started and cost > FALLBACK_COST_S:
            advice = (
                f"consider a smaller backoff (now {backoff:g}) or max_retries for {key} (now "
                f"{attempts})"
                if breaker
                else f"consider circuit_breaker= or a smaller backoff (now {backoff:g})"
            )
            add(
                "advice",
                f"An outage of {key} costs each call that starts on it {_s(cost)} before it falls "
                f"back (up to {attempts} attempt(s) of it and the waits between them; "
                f"{started} of the {in_window} calls during the outage): {advice}.",
            )
        elif started:
            add(
                "ok",
                f"An outage of {key} is absorbed: calls that start on it fall back after "
                f"{_s(cost)} on average.",
            )
        elif in_window and success >= SUCCESS_TARGET:
            add(
                "ok",
                f"An outage of {key} did not reach the calls' first attempts: none of the "
                f"{in_window} calls during it started on {key}.",
            )
        if breaker and in_window:
            add(
                "note",
                f"With the circuit breaker, {reached} of the {in_window} calls during the outage "
                f"sent a request to {key} ({int(measures['requests_to_down_model'])} requests).",
            )
        if success < SUCCESS_TARGET:
            only = len(captured.positive_models()) < 2
            fix = (
                f"{key} is the only model calls can reach: add a fallback model (another "
                "provider or deployment)"
                if only
                else "the fallbacks did not absorb it: check the weights and the fallback models' "
                "own settings"
            )
            add("advice", f"{_pct(1 - success)} of calls failed during the outage of {key}: {fix}.")
    elif user.kind == "flaky-5xx":
        if success < SUCCESS_TARGET:
            fix = (
                f"the circuit breaker opened {opened} time(s), taking models that were only "
                "flaky out of the rotation: a higher failure_ratio or consecutive_failures keeps "
                "it for outages"
                if breaker and opened
                else "raise max_retries or add a fallback model"
                if len(captured.positive_models()) < 2
                else f"raise max_retries (now {_attempts(scenario)} attempt(s) per model before "
                "it falls back)"
            )
            add(
                "advice",
                f"Flaky 5xx (10% of answers) still fail {_pct(1 - success)} of calls: {fix}.",
            )
        if p99 > P99_S or wait > WAIT_PER_CALL_S:
            add(
                "advice",
                f"Flaky 5xx stretch the p99 time to outcome to {_s(p99)}{healthy_p99}, "
                f"{_s(wait)} of waiting per call on average: a smaller backoff (now "
                f"{_backoffs(scenario)}; the k-th wait is backoff ** k) shortens it.",
            )
        if success >= SUCCESS_TARGET and p99 <= P99_S and wait <= WAIT_PER_CALL_S:
            add(
                "ok",
                f"Flaky 5xx are absorbed: {_pct(success)} success, p99 {_s(p99)}{healthy_p99}.",
            )
    elif user.kind == "rate-limits":
        cap = scenario.retry_after_cap
        if wait > WAIT_PER_CALL_S:
            add(
                "advice",
                f"Rate limits make calls wait {_s(wait)} on average (p99 time to outcome "
                f"{_s(p99)}): Retry-After is honoured up to retry_after_cap={cap:g} s; a lower "
                "retry_after_cap makes calls fall back instead of waiting.",
            )
        if success < SUCCESS_TARGET:
            over = measures.get("left_for_retry_after_over_cap_per_call", 0.0)
            if breaker and opened:
                fix = (
                    f"the circuit breaker opened {opened} time(s), taking rate-limited models out "
                    "of the rotation: a higher failure_ratio or consecutive_failures keeps it for "
                    "outages"
                )
            elif over > 0:
                fix = (
                    f"{over:.2f} answers per call asked for a wait beyond retry_after_cap={cap:g} s, "
                    "which leaves the model at once: a higher retry_after_cap waits instead, or "
                    "add a fallback model on another provider"
                )
            else:
                fix = "raise max_retries or add a fallback model on another provider"
            add("advice", f"Rate limits fail {_pct(1 - success)} of calls: {fix}.")
        if wait <= WAIT_PER_CALL_S and success >= SUCCESS_TARGET:
            add(
                "ok",
                f"Rate limits are absorbed: {_pct(success)} success, {_s(wait)} waiting per call.",
            )
    elif user.kind == "slow-primary" and user.model is not None:
        key = user.model
        timeout = scenario.timeouts[key]
        attempts = scenario.max_attempts[key]
        if p99 > P99_S:
            options = [f"a smaller timeout for {key}"]
            if not has_deadline:
                options.append("deadline=")
            if captured.is_async and config.get("hedge") is None:
                options.append("hedge= (a parallel attempt on the next model)")
            add(
                "advice",
                f"A primary slower than its timeout keeps calls waiting: p99 {_s(p99)}"
                f"{healthy_p99}, "
                f"{_s(measures['lost_to_timeouts_per_call_s'])} per call lost to timeouts "
                f"({timeout:g} s timeout, up to {attempts} attempt(s) on {key} before falling "
                f"back): consider {' or '.join(options)}.",
            )
        else:
            add(
                "ok",
                f"A slow primary costs p99 {_s(p99)}: {_pct(measures['calls_with_a_timeout'])} of "
                f"calls waited out at least one {timeout:g} s timeout.",
            )
        if success < SUCCESS_TARGET:
            fix = (
                f"the deadline ({config['deadline']:g} s) ends them before a fallback answers: a "
                f"smaller timeout for {key} leaves the fallback time within it"
                if has_deadline
                else "add a fallback model or raise its timeout"
            )
            add("advice", f"A slow primary fails {_pct(1 - success)} of calls: {fix}.")
    elif user.kind == "storm":
        budget = config.get("retry_budget") not in (None, False)
        if http > HTTP_PER_CALL and not budget:
            add(
                "advice",
                f"In a storm (every model failing 60% of the time) each call sends {http:.2f} "
                "HTTP requests: retries multiply the load on providers that are already failing; "
                "consider retry_budget=.",
            )
        if p99 > P99_S and not has_deadline:
            add(
                "advice",
                f"In a storm the p99 time to outcome is {_s(p99)}{healthy_p99}: deadline= bounds a "
                "whole call, all attempts and waits included.",
            )
        text = f"In a storm {_pct(success)} of calls succeed, {http:.2f} HTTP requests each"
        if breaker and opened:
            text += (
                f"; the circuit breaker opened {opened} time(s): a call that finds every model "
                "open tries only the one whose break ends soonest (fewer requests to failing "
                "providers, fewer successes)"
            )
        add("note", text + ".")
    elif user.kind == "stalled-streams" and user.model is not None:
        key = user.model
        limit = scenario.first_chunk_timeouts[key]
        stalls = measures.get("stalls_per_call", 0.0)
        broken = measures.get("broken_after_first_chunk", 0.0)
        text = (
            f"Streams of {key} that stall beyond its {limit:g} s first_chunk_timeout: "
            f"{stalls:.2f} per call, p99 time to outcome {_s(p99)}. {_pct(broken)} of calls saw "
            "their stream break after its first chunk: that is never replayed, your code "
            "receives the error"
        )
        if not captured.is_async:
            add(
                "note",
                text + ". Sync clients here wait a stall out before it counts as a timeout (as on "
                "any transport but a plain HTTP/1.1 socket, where the runtime cuts it at the "
                "limit), so this p99 is an upper bound.",
            )
        elif p99 > P99_S:
            add("advice", text + f"; a smaller first_chunk_timeout for {key} shortens the wait.")
        else:
            add("note", text + ".")
    elif user.kind == "healthy":
        add(
            "note",
            f"Without faults: {_pct(success)} success, p50 {_s(figures['p50_s'])}, p99 {_s(p99)}, "
            f"{http:.2f} HTTP requests per call.",
        )
    else:
        add(
            "note",
            f"{_pct(success)} success, p99 {_s(p99)}, {http:.2f} HTTP requests and {_s(wait)} "
            "waiting per call.",
        )
    return found


def _backoffs(scenario: Any) -> str:
    values = sorted(set(scenario.backoffs.values()))
    return ", ".join(f"{v:g}" for v in values)


def _attempts(scenario: Any) -> str:
    """The models' ``max_retries`` (attempts per model), as the configuration gave them."""
    values = sorted(set(scenario.max_attempts.values()))
    return ", ".join(str(v) for v in values)
