"""Scenario files (``chaos/scenarios/*.json`` or ``*.toml``): loading and validation.

A scenario is the runtime's configuration (what ``notdiamond.init`` gets), one fault model per
``<provider>/<model>``, and the traffic to send. Every mistake is reported with the file, the
field and the fix, before anything runs. The format is documented in ``chaos/README.md``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from notdiamond._config import ModelSettings

from .faults import FaultModelError, ProviderFaults
from .fleet_settings import FleetSettings, parse_fleet
from .health import HEALTH_FIELDS, init_options

SCENARIO_DIR: Final = Path(__file__).parent / "scenarios"

Mode = Literal["sync", "async", "server", "fleet"]

_TOP_FIELDS: Final = {
    "description",
    "mode",
    "config",
    "providers",
    "traffic",
    "checks",
    "server",
    "selector_draws",
    "fleet",
}
_CONFIG_FIELDS: Final = {
    "models",
    "max_retries",
    "timeout",
    "backoff",
    "model_messages",
    "retry_after_cap",
    "jitter",
    "first_chunk_timeout",
    "hedge",
    # the health strategies (chaos/health.py): circuit_breaker, retry_budget, deadline
    *HEALTH_FIELDS,
}
_TRAFFIC_FIELDS: Final = {"n", "model", "interval", "stream", "quick_n"}
_SERVER_FIELDS: Final = {"time_scale"}


class ScenarioError(ValueError):
    """A scenario file that cannot run; the message names the file, the field and the fix."""


@dataclass(frozen=True)
class Traffic:
    #: Requests to send: a number, or ``"auto"`` for the power analysis's size.
    n: int | Literal["auto"]
    #: What each request names as ``model``: ``"notdiamond"`` or a configured key/name.
    model: str
    #: Simulated seconds between request arrivals.
    interval: float
    #: Share of requests sent with ``stream=True``.
    stream: float
    #: Requests in a ``--quick`` run (and in the test suite's reduced run).
    quick_n: int


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    mode: Mode
    #: The keyword arguments of ``notdiamond.init`` (besides the clients).
    config: Mapping[str, Any]
    providers: Mapping[str, ProviderFaults]
    traffic: Traffic
    checks: tuple[str, ...]
    #: For ``mode="server"``: real seconds per simulated second.
    time_scale: float = 0.01
    #: Also run the weighted checks at their full power-analysis size on the runtime's selector.
    selector_draws: bool = False
    #: For ``mode="fleet"``: the processes and their shared Redis state (``chaos/fleet_settings.py``).
    fleet: FleetSettings | None = None
    source: str = ""
    order: tuple[str, ...] = field(default=())
    weights: tuple[float, ...] | None = None

    #: Per model, the settings exactly as the runtime parsed them (``notdiamond._config``).
    settings: Mapping[str, ModelSettings] = field(default_factory=dict)
    #: ``retry_after_cap`` and ``jitter`` as the runtime reads them (its defaults when absent).
    retry_after_cap: float = 60.0
    jitter: float = 0.0
    #: ``first_chunk_timeout`` per model that has one, as the runtime reads it.
    first_chunk_timeouts: Mapping[str, float] = field(default_factory=dict)

    # -- the configuration, as the runtime reads it ---------------------------------------
    @property
    def max_attempts(self) -> dict[str, int]:
        return {k: s.max_attempts for k, s in self.settings.items()}

    @property
    def timeouts(self) -> dict[str, float]:
        return {k: s.timeout for k, s in self.settings.items()}

    @property
    def backoffs(self) -> dict[str, float]:
        return {k: s.backoff for k, s in self.settings.items()}

    @property
    def messages(self) -> dict[str, tuple[Any, ...]]:
        """Per model, the ``model_messages`` prepended to every attempt (empty: none)."""
        return {k: tuple(s.messages) for k, s in self.settings.items()}

    def init_kwargs(self) -> dict[str, Any]:
        """What ``notdiamond.init`` gets besides the clients: the file's ``config`` (``hedge``:
        the keyword arguments of ``notdiamond.Hedge``; the health strategies built by
        ``chaos/health.py``)."""
        kwargs = {**self.config, **init_options(self.config)}
        if isinstance(kwargs.get("hedge"), Mapping):
            import notdiamond

            kwargs["hedge"] = notdiamond.Hedge(**kwargs["hedge"])
        return kwargs

    @property
    def hedge_delay(self) -> float | None:
        """The fixed ``delay`` of ``config.hedge`` (None: no hedging, or a percentile delay)."""
        hedge = self.config.get("hedge")
        if not isinstance(hedge, Mapping):
            return None
        delay = hedge.get("delay", 2.0)
        return float(delay) if isinstance(delay, int | float) else None

    @property
    def weighted(self) -> bool:
        return self.weights is not None

    @property
    def stationary(self) -> bool:
        return all(f.stationary for f in self.providers.values())

    def first_key(self) -> str | None:
        """The model every request starts on, or ``None`` when it is drawn by weight."""
        model = self.traffic.model
        if model == "notdiamond":
            return None if self.weighted else self.order[0]
        if model in self.order:
            return model
        matches = [k for k in self.order if k.split("/", 1)[1] == model]
        return matches[0] if matches else None

    def provider_set(self) -> set[str]:
        return {k.split("/", 1)[0] for k in self.order}


def _fail(source: str, message: str) -> ScenarioError:
    return ScenarioError(f"{source}: {message}")


def _only(source: str, prefix: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    """Reject the fields of ``raw`` outside ``allowed``; ``prefix`` names the table they are in."""
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise _fail(source, f"{prefix}unknown field(s) {unknown}; allowed: {sorted(allowed)}.")


def parse(raw: object, *, name: str, source: str = "<scenario>") -> Scenario:
    """Validate one scenario's data; raise :class:`ScenarioError` naming the field and the fix."""
    if not isinstance(raw, Mapping):
        raise _fail(source, "a scenario is an object (JSON) or a table (TOML) at the top level.")
    _only(source, "", raw, _TOP_FIELDS)
    mode = raw.get("mode", "sync")
    if mode not in ("sync", "async", "server", "fleet"):
        raise _fail(
            source,
            f"mode: {mode!r}; use 'sync', 'async' or 'server' "
            "(or 'fleet': several processes, see chaos/fleet_settings.py).",
        )
    fleet: FleetSettings | None = None
    if mode == "fleet" or "fleet" in raw:
        if mode != "fleet":
            raise _fail(source, 'fleet: only with "mode": "fleet".')
        try:
            fleet = parse_fleet(raw.get("fleet", {}))
        except ValueError as exc:
            raise _fail(source, str(exc)) from None

    config = raw.get("config")
    if not isinstance(config, Mapping) or "models" not in config:
        raise _fail(
            source,
            'config: missing. Give what notdiamond.init gets, at least "models", e.g. '
            '{"models": ["openai/gpt-4o", "azure/gpt-4o"], "max_retries": 2}.',
        )
    _only(source, "config: ", config, _CONFIG_FIELDS)
    models = config["models"]
    if isinstance(models, Mapping):
        order = tuple(str(k) for k in models)
        weights: tuple[float, ...] | None = tuple(float(v) for v in models.values())
    elif isinstance(models, list) and all(isinstance(m, str) for m in models):
        order, weights = tuple(models), None
    else:
        raise _fail(
            source, "config.models: a list of '<provider>/<model>' or an object of weights."
        )
    if not order:
        raise _fail(source, "config.models: empty; configure at least one model.")
    from notdiamond._config import parse_models

    try:
        parse_models(models)
    except (TypeError, ValueError) as exc:
        raise _fail(source, f"config: {exc}") from None

    providers_raw = raw.get("providers", {})
    if not isinstance(providers_raw, Mapping):
        raise _fail(source, "providers: an object of '<provider>/<model>' -> fault model.")
    missing = [k for k in order if k not in providers_raw]
    if missing:
        raise _fail(
            source,
            f"providers: no fault model for {missing}. Add an entry per configured model "
            "(an empty object {} is a healthy provider).",
        )
    extra = [k for k in providers_raw if k not in order]
    if extra:
        raise _fail(source, f"providers: {extra} are not among config.models {list(order)}.")
    try:
        providers = {k: ProviderFaults.parse(k, v) for k, v in providers_raw.items()}
    except FaultModelError as exc:
        raise _fail(source, str(exc)) from None

    traffic_raw = raw.get("traffic", {})
    if not isinstance(traffic_raw, Mapping):
        raise _fail(source, 'traffic: an object such as {"n": 2000, "interval": 0.5}.')
    _only(source, "traffic: ", traffic_raw, _TRAFFIC_FIELDS)
    n = traffic_raw.get("n", "auto")
    if n != "auto" and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise _fail(source, f'traffic.n: a whole number >= 1 or "auto", got {n!r}.')
    interval = traffic_raw.get("interval", 1.0)
    stream = traffic_raw.get("stream", 0.0)
    quick_n = traffic_raw.get("quick_n", 300)
    for label, value, low, high in (
        ("interval", interval, 0.0, math.inf),
        ("stream", stream, 0.0, 1.0),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not low <= value <= high
        ):
            raise _fail(source, f"traffic.{label}: a number in [{low}, {high}], got {value!r}.")
    if isinstance(quick_n, bool) or not isinstance(quick_n, int) or quick_n < 1:
        raise _fail(source, f"traffic.quick_n: a whole number >= 1, got {quick_n!r}.")
    model = str(traffic_raw.get("model", "notdiamond"))
    traffic = Traffic(n, model, float(interval), float(stream), quick_n)

    from .checks import check_names

    names = check_names()
    checks_raw = raw.get("checks", list(names))
    if not isinstance(checks_raw, list) or not checks_raw:
        raise _fail(source, f"checks: a non-empty list drawn from {list(names)}.")
    unknown_checks = [c for c in checks_raw if c not in names]
    if unknown_checks:
        raise _fail(source, f"checks: {unknown_checks} unknown; the checks are {list(names)}.")

    server_raw = raw.get("server", {})
    if not isinstance(server_raw, Mapping) or set(server_raw) - _SERVER_FIELDS:
        raise _fail(source, 'server: an object such as {"time_scale": 0.01}.')
    time_scale = server_raw.get("time_scale", 0.01)
    if (
        isinstance(time_scale, bool)
        or not isinstance(time_scale, int | float)
        or not 0 < time_scale <= 1
    ):
        raise _fail(
            source,
            f"server.time_scale: real seconds per simulated second in (0, 1], got {time_scale!r}.",
        )

    scenario = Scenario(
        name=name,
        description=str(raw.get("description", "")),
        mode=mode,
        config=dict(config),
        providers=providers,
        traffic=traffic,
        checks=tuple(c for c in names if c in checks_raw),
        time_scale=float(time_scale),
        selector_draws=bool(raw.get("selector_draws", False)),
        fleet=fleet,
        source=source,
        order=order,
        weights=weights,
    )
    if model != "notdiamond" and scenario.first_key() is None:
        raise _fail(
            source, f"traffic.model: {model!r} is neither 'notdiamond' nor a configured model."
        )
    if mode in ("server", "fleet") and any(
        f.retry_after.header == "http-date" for f in providers.values()
    ):
        raise _fail(
            source,
            "retry_after.header 'http-date' is for in-process modes: over real sockets the "
            "server's delays are scaled, an HTTP date is not. Use 'retry-after-ms'.",
        )
    return _with_runtime_settings(scenario)


def _with_runtime_settings(scenario: Scenario) -> Scenario:
    """Let the runtime parse the configuration with its own code: its validation (messages that
    name the fix) and its per-model settings and defaults, which the checks then compare with."""
    from notdiamond._config import parse_config

    from .health import validate as validate_health

    config = scenario.config
    defaults = _runtime_defaults()
    try:
        parsed = parse_config(
            config["models"],
            max_retries=config.get("max_retries", defaults["max_retries"]),
            timeout=config.get("timeout", defaults["timeout"]),
            backoff=config.get("backoff", defaults["backoff"]),
            model_messages=config.get("model_messages"),
            available_providers=frozenset(scenario.provider_set()),  # type: ignore[arg-type]
        )
        options = _runtime_options(config, parsed.order)
        if "hedge" in config:
            _check_hedge(config["hedge"], scenario.mode)
        validate_health(config)
    except (TypeError, ValueError) as exc:
        raise _fail(scenario.source, f"config: {exc}") from None
    return dataclasses.replace(
        scenario,
        settings=dict(parsed.settings),
        retry_after_cap=float(options["retry_after_cap"]),
        jitter=float(options["jitter"]),
        first_chunk_timeouts={k: float(v) for k, v in options["first_chunk_timeout"].items()},
    )


def _check_hedge(value: object, mode: str) -> None:
    """``config.hedge``: the keyword arguments of ``notdiamond.Hedge``, for async clients."""
    import notdiamond

    if not isinstance(value, Mapping):
        raise ValueError('hedge: an object of notdiamond.Hedge arguments, e.g. {"delay": 1.5}.')
    if mode != "async":
        raise ValueError('hedge: hedging needs async clients; use "mode": "async".')
    notdiamond.Hedge(**value)


def _runtime_defaults() -> dict[str, Any]:
    """``init``'s defaults for the per-model settings, from the runtime itself."""
    import inspect

    import notdiamond

    params = inspect.signature(notdiamond.init).parameters
    return {name: params[name].default for name in ("max_retries", "timeout", "backoff")}


def _runtime_options(config: Mapping[str, Any], models: tuple[str, ...]) -> dict[str, Any]:
    """The keyword-only ``init`` options the file sets, validated and defaulted by the runtime's
    own ``parse_options`` (every option: the given value or its default)."""
    from notdiamond._options import parse_options

    given = {
        k: v for k, v in config.items() if k in ("retry_after_cap", "jitter", "first_chunk_timeout")
    }
    return parse_options(given, is_async=False, models=models)


def load(path: Path | str) -> Scenario:
    """Load and validate one scenario file (``.json`` or ``.toml``)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(source, f"cannot read the file ({exc.strerror}).") from None
    try:
        if path.suffix == ".toml":
            raw: object = _load_toml(text, source)
        elif path.suffix == ".json":
            raw = json.loads(text)
        else:
            raise _fail(source, "scenario files end in .json or .toml.")
    except json.JSONDecodeError as exc:
        raise _fail(
            source, f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    return parse(raw, name=path.stem, source=source)


def _load_toml(text: str, source: str) -> object:
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise _fail(source, f"not valid TOML: {exc}.") from None
    raise _fail(source, "TOML scenario files need Python 3.11 or later (tomllib); use JSON.")


def builtin_paths() -> list[Path]:
    return sorted(p for p in SCENARIO_DIR.iterdir() if p.suffix in (".json", ".toml"))


def load_builtin(names: list[str] | None = None) -> list[Scenario]:
    """The scenarios under ``chaos/scenarios/`` (all, or those named)."""
    paths = {p.stem: p for p in builtin_paths()}
    if names:
        unknown = [n for n in names if n not in paths]
        if unknown:
            raise ScenarioError(f"unknown scenario(s) {unknown}; available: {sorted(paths)}.")
        return [load(paths[n]) for n in names]
    return [load(p) for p in paths.values()]


#: A fleet run's cost per request in the scheduler's units: it runs in real time (about 20 s with
#: its start-up) and fleet runs take turns, so they are started first, not left for the tail.
FLEET_COST_PER_REQUEST: Final = 150.0


def expected_http_per_request(scenario: Scenario) -> float:
    """A rough cost estimate (HTTP requests per request), for scheduling runs across cores."""
    if scenario.mode == "fleet":
        return FLEET_COST_PER_REQUEST
    total = 0.0
    for key in scenario.order:
        t, p = scenario.providers[key].p_attempt(scenario.timeouts[key], scenario.retry_after_cap)
        a = scenario.max_attempts[key]
        total += sum(t**k for k in range(a)) if t < 1 else a
        _ = p
    return max(1.0, total / len(scenario.order) * 1.2)
