"""The built-in fault scenarios of an ``--init`` run, built around the application's configuration;
and scenario files that leave ``config`` out to use it.

Every scenario keeps the application's configuration (models, per-model settings, options) and
puts the fake providers under one kind of trouble. Healthy answers take a lognormal latency of
median ``min(0.5 s, timeout / 5)`` (sigma 0.3); calls arrive one per simulated second, all with
``model="notdiamond"``:

- ``healthy``: no faults, the baseline the other scenarios compare with;
- ``outage-<model>`` (one per model a call can reach): that model answers 503 to everything from
  20% to 70% of the run's span, the others stay healthy;
- ``flaky-5xx``: every model answers 500 (5%), 502 (3%) or 503 (2%);
- ``rate-limits``: every model answers 30% of requests with 429 and a ``Retry-After`` of 1-10 s
  (whole seconds);
- ``slow-primary``: the primary (first of a list, heaviest of a weighted dict) answers in a
  lognormal latency whose median is 0.8 times its timeout (sigma 0.5): about a third of its
  attempts run into the timeout;
- ``stalled-streams`` (only with ``first_chunk_timeout`` configured: the application streams):
  every call streams; the primary's streams stall before their first chunk for twice its
  ``first_chunk_timeout`` (20%) or break after two chunks (5%);
- ``storm``: every model answers 503 (50%) or 500 (10%).

Which checks judge a run depends on the configuration (:func:`checks_for_config`): the plain
policy's checks when no health strategy changes the policy, the strategy's own checks when one is
on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from .scenario import Scenario, ScenarioError, parse
from .user_config import Captured

#: Calls per scenario (``--quick``: the second).
CALLS: Final = 1000
QUICK_CALLS: Final = 200
#: Simulated seconds between two calls' arrivals.
INTERVAL: Final = 1.0
#: The outage window, as shares of the run's span.
OUTAGE_WINDOW: Final = (0.2, 0.7)
FLAKY_ERRORS: Final = {"500": 0.05, "502": 0.03, "503": 0.02}
RATE_LIMIT_SHARE: Final = 0.3
RETRY_AFTER_SECONDS: Final = (1.0, 10.0)
STORM_ERRORS: Final = {"503": 0.5, "500": 0.1}
#: The slow primary's median latency, as a share of its timeout (sigma 0.5).
SLOW_MEDIAN: Final = 0.8
#: ``stalled-streams``: the shares of the streams that stall, and that break after two chunks.
STALL_SHARE: Final = 0.2
BREAK_AFTER_SHARE: Final = 0.05


@dataclass(frozen=True)
class UserScenario:
    """One scenario of an ``--init`` run: what trouble it is (for the findings) and the scenario."""

    #: ``healthy``, ``outage``, ``flaky-5xx``, ``rate-limits``, ``slow-primary``,
    #: ``stalled-streams``, ``storm`` or ``file``.
    kind: str
    scenario: Scenario
    #: The model in trouble (``outage``, ``slow-primary``).
    model: str | None = None
    #: The outage window in simulated seconds (``outage``).
    window: tuple[float, float] | None = None


def checks_for_config(
    config: Mapping[str, Any], *, errors: bool = True, sdk_retries: bool = False
) -> list[str]:
    """The checks that judge a run of this configuration (before each check's own ``applies``).

    The policy checks (attempts, waits, fallback order or weights, final error, success rate)
    replay the plain retry policy; a circuit breaker, retry budget, deadline or hedge changes that
    policy, so with one on, its own checks judge instead. ``conservation`` (every call ends once,
    with the last answer's SDK error) does not hold as stated under a deadline (which raises
    ``DeadlineExceeded``) or hedging (a call's attempts race); ``attempt_fields`` not under a
    deadline (which shortens an attempt's timeout). The hedging checks predict the hedge rate
    from latencies alone: they judge only scenarios without injected errors (``errors=False``).
    With ``sdk_retries=True`` the SDK's own retries multiply the requests inside each attempt, so
    none of the policy checks hold as stated.
    """
    weighted = isinstance(config.get("models"), Mapping)
    breaker = config.get("circuit_breaker") not in (None, False)
    budget = config.get("retry_budget") not in (None, False)
    hedge = config.get("hedge") is not None
    deadline = config.get("deadline") is not None
    names = []
    if not (deadline or hedge):
        names.append("conservation")
    if not deadline:
        names.append("attempt_fields")
    if not (breaker or budget or hedge or deadline or sdk_retries):
        names += ["attempts_per_policy", "backoff_waits", "final_error", "success_rate"]
        names += (
            ["first_choice_weights", "fallback_weights", "reproducible_selection"]
            if weighted
            else ["fallback_order"]
        )
    if breaker:
        names.append("breaker_reference")
        # while one model is open, the first choices among the others follow their weights: a
        # question only with at least two others
        models = config.get("models")
        if isinstance(models, Mapping) and sum(1 for w in models.values() if float(w) > 0) >= 3:
            names.append("open_weights")
    if budget:
        names.append("retry_budget")
    if deadline:
        names.append("deadline")
    if hedge and not errors:
        names += ["hedge_rate", "hedge_latency", "hedge_losers_cancelled"]
    return names


def _source(captured: Captured) -> str:
    return f"--init {captured.target}"


def _parse(captured: Captured, name: str, raw: Mapping[str, Any]) -> Scenario:
    return parse(dict(raw), name=name, source=f"{_source(captured)} [{name}]")


def _healthy(timeout: float) -> dict[str, Any]:
    return {"latency": {"kind": "lognormal", "median": min(0.5, timeout / 5), "sigma": 0.3}}


def scenario_name(kind: str, model: str | None = None) -> str:
    """A scenario's name (also a file name of its plots: no ``/``)."""
    return kind if model is None else f"{kind}-{model.replace('/', '-')}"


def fault_scenarios(captured: Captured, *, quick: bool) -> list[UserScenario]:
    """The built-in fault scenarios for the application's configuration."""
    n = QUICK_CALLS if quick else CALLS
    sdk_retries = bool(captured.extra.get("sdk_retries"))
    traffic = {"n": n, "quick_n": n, "model": "notdiamond", "interval": INTERVAL}
    base = {
        "mode": captured.mode,
        "config": captured.config,
        "traffic": traffic,
        "checks": checks_for_config(captured.config, sdk_retries=sdk_retries),
    }
    order = captured.order
    # the runtime's own reading of the per-model timeouts (defaults included)
    probe = _parse(
        captured,
        "configuration",
        {**base, "providers": {k: {} for k in order}, "checks": ["conservation"]},
    )
    timeouts = probe.timeouts
    healthy = {k: _healthy(timeouts[k]) for k in order}
    span = n * INTERVAL
    start, end = OUTAGE_WINDOW[0] * span, OUTAGE_WINDOW[1] * span
    out: list[UserScenario] = []
    baseline = {
        **base,
        "description": "No faults: every model answers (the baseline the other rows compare with).",
        "providers": healthy,
        "checks": checks_for_config(captured.config, errors=False, sdk_retries=sdk_retries),
    }
    out.append(UserScenario("healthy", _parse(captured, "healthy", baseline)))
    for key in captured.positive_models():
        name = scenario_name("outage", key)
        providers = {
            **healthy,
            key: {**healthy[key], "outages": [{"start": start, "end": end, "status": "503"}]},
        }
        raw = {
            **base,
            "description": f"{key} answers 503 to every request from t={start:g} s to "
            f"t={end:g} s (of {span:g} s); the other models are healthy.",
            "providers": providers,
        }
        out.append(UserScenario("outage", _parse(captured, name, raw), key, (start, end)))

    def everywhere(extra: Mapping[str, Any]) -> dict[str, Any]:
        return {k: {**healthy[k], **extra} for k in order}

    flaky = {
        **base,
        "description": "Every model fails now and then: 500 (5%), 502 (3%), 503 (2%).",
        "providers": everywhere({"errors": FLAKY_ERRORS}),
    }
    out.append(UserScenario("flaky-5xx", _parse(captured, "flaky-5xx", flaky)))
    low, high = RETRY_AFTER_SECONDS
    limited = {
        **base,
        "description": f"Every model answers {RATE_LIMIT_SHARE:.0%} of requests with 429 and a "
        f"Retry-After of {low:g}-{high:g} s (whole seconds).",
        "providers": everywhere(
            {
                "errors": {"429": RATE_LIMIT_SHARE},
                "retry_after": {
                    "header": "retry-after",
                    "kind": "uniform",
                    "low": low,
                    "high": high,
                },
            }
        ),
    }
    out.append(UserScenario("rate-limits", _parse(captured, "rate-limits", limited)))
    primary = captured.primary()
    t = timeouts[primary]
    share = 1 - _lognormal_cdf(t, SLOW_MEDIAN * t, 0.5)
    slow = {
        **base,
        "checks": checks_for_config(captured.config, errors=False, sdk_retries=sdk_retries),
        "description": f"The primary, {primary}, answers slowly (lognormal, median "
        f"{SLOW_MEDIAN * t:g} s): about {share:.0%} of its attempts run into its {t:g} s timeout.",
        "providers": {
            **healthy,
            primary: {"latency": {"kind": "lognormal", "median": SLOW_MEDIAN * t, "sigma": 0.5}},
        },
    }
    out.append(UserScenario("slow-primary", _parse(captured, "slow-primary", slow), primary))
    stalled = _stalled_streams(captured, base, healthy, probe.first_chunk_timeouts)
    if stalled is not None:
        out.append(stalled)
    storm = {
        **base,
        "description": "A storm: every model answers 503 (50%) or 500 (10%).",
        "providers": everywhere({"errors": STORM_ERRORS}),
    }
    out.append(UserScenario("storm", _parse(captured, "storm", storm)))
    return out


def _stalled_streams(
    captured: Captured,
    base: Mapping[str, Any],
    healthy: Mapping[str, Any],
    first_chunk_timeouts: Mapping[str, float],
) -> UserScenario | None:
    """With ``first_chunk_timeout`` configured (the application streams): every call streams, and
    the first model that has one stalls before its first chunk for twice that limit
    (:data:`STALL_SHARE` of its streams) or breaks after two chunks (:data:`BREAK_AFTER_SHARE`)."""
    if not first_chunk_timeouts:
        return None
    primary = captured.primary()
    key = primary if primary in first_chunk_timeouts else next(iter(first_chunk_timeouts))
    limit = first_chunk_timeouts[key]
    faults = {
        "stall": {"probability": STALL_SHARE, "seconds": 2 * limit},
        "break_after": {"probability": BREAK_AFTER_SHARE, "after_chunks": 2},
    }
    checks = [
        c
        for c in checks_for_config(
            captured.config, errors=False, sdk_retries=bool(captured.extra.get("sdk_retries"))
        )
        # the other checks state the rules of calls that are not streamed; the stream checks
        # judge the policy for streams, the strategies' own checks their decisions
        if c in ("breaker_reference", "open_weights", "retry_budget", "deadline")
    ]
    raw = {
        **base,
        "description": f"Every call streams; {key}'s streams stall before their first chunk for "
        f"{2 * limit:g} s ({STALL_SHARE:.0%}, beyond its {limit:g} s first_chunk_timeout) or "
        f"break after two chunks ({BREAK_AFTER_SHARE:.0%}).",
        "providers": {**healthy, key: {**healthy[key], "stream_faults": faults}},
        "traffic": {**base["traffic"], "stream": 1.0},
        "checks": [*checks, "stream_first_chunk", "stream_break_after_first"],
    }
    return UserScenario("stalled-streams", _parse(captured, "stalled-streams", raw), key)


def _lognormal_cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * math.erfc(-math.log(x / median) / (sigma * math.sqrt(2.0)))


def select(scenarios: list[UserScenario], names: list[str]) -> list[UserScenario]:
    """The scenarios ``--scenario`` names: an exact name, or a kind (``outage``: every outage)."""
    chosen = [s for s in scenarios if s.scenario.name in names or s.kind in names]
    known = {s.scenario.name for s in scenarios} | {s.kind for s in scenarios}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ScenarioError(
            f"--init: unknown scenario(s) {unknown}; with --init the scenarios are "
            f"{sorted(known)}, or a path to a scenario file (.json/.toml)."
        )
    return chosen


def load_file(path: Path | str, captured: Captured) -> UserScenario:
    """A scenario file for an ``--init`` run: without ``config`` it runs the application's
    configuration; without ``mode``, the application's clients' (sync or async); without
    ``checks``, those that apply to the configuration."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{source}: cannot read the file ({exc.strerror}).") from None
    if path.suffix == ".json":
        try:
            raw: object = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ScenarioError(
                f"{source}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from None
    elif path.suffix == ".toml":
        from .scenario import _load_toml

        raw = _load_toml(text, source)
    else:
        raise ScenarioError(f"{source}: scenario files end in .json or .toml.")
    if not isinstance(raw, Mapping):
        raise ScenarioError(f"{source}: a scenario is an object (JSON) or a table (TOML).")
    data = dict(raw)
    config = data.setdefault("config", captured.config)
    data.setdefault("mode", captured.mode)
    if isinstance(config, Mapping):
        providers = data.get("providers")
        errors = not isinstance(providers, Mapping) or any(
            not isinstance(f, Mapping) or set(f) - {"latency"} for f in providers.values()
        )
        data.setdefault(
            "checks",
            checks_for_config(
                config, errors=errors, sdk_retries=bool(captured.extra.get("sdk_retries"))
            ),
        )
    return UserScenario("file", parse(data, name=path.stem, source=source))
