"""The fault model as data, and its seeded sampling.

A :class:`ProviderFaults` describes one ``<provider>/<model>``: an error mix, a latency
distribution, outage windows and a token-bucket rate limit (all in simulated seconds), and streams
cut after ``k`` chunks. :class:`FaultSampler` turns it into one :class:`Outcome` per HTTP request,
from its own seeded generator, so a scenario replays exactly for a given seed.

The order of evaluation for one request at simulated time ``t`` is fixed (and documented in
``chaos/README.md``): outage window, rate limit, latency (beyond the request's read timeout: a read
timeout), error mix, stream cut.
"""

from __future__ import annotations

import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from .stream_faults import StreamFaults

#: Every fault an error mix may name. Numbers are HTTP statuses; the rest happen on the socket.
ERROR_KINDS: Final = (
    "429",
    "408",
    "409",
    "500",
    "502",
    "503",
    "400",
    "401",
    "403",
    "404",
    "422",
    "reset",
    "read_timeout",
)
#: Faults after which the runtime retries the same model (SPEC 4.3: timeouts, connection errors,
#: 408, 409, 429, 5xx).
TRANSIENT_KINDS: Final = frozenset(
    {"429", "408", "409", "500", "502", "503", "reset", "read_timeout"}
)
#: Faults after which the runtime leaves the model at once (400, 401, 403, 404, 422).
PERMANENT_KINDS: Final = frozenset({"400", "401", "403", "404", "422"})
#: Statuses that may carry a Retry-After header (``retry_after.on``).
RETRY_AFTER_STATUSES: Final = ("429", "503", "500", "502", "408", "409")

OutcomeKind = Literal[
    "ok",
    "429",
    "408",
    "409",
    "500",
    "502",
    "503",
    "400",
    "401",
    "403",
    "404",
    "422",
    "reset",
    "read_timeout",
]


#: The fields of one provider's fault model.
PROVIDER_FIELDS: Final = (
    "latency",
    "errors",
    "retry_after",
    "outages",
    "rate_limit",
    "stream_cut",
    "stream_faults",
)


class FaultModelError(ValueError):
    """A fault model that cannot be simulated; the message names the field and the fix."""


def _number(where: str, raw: Mapping[str, Any], name: str, *, low: float = 0.0) -> float:
    if name not in raw:
        raise FaultModelError(f"{where}: missing {name!r}.")
    value = raw[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FaultModelError(f"{where}.{name}: expected a finite number, got {value!r}.")
    if value < low:
        raise FaultModelError(f"{where}.{name}: must be >= {low}, got {value!r}.")
    return float(value)


def _only(where: str, raw: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise FaultModelError(f"{where}: unknown field(s) {extra}; allowed: {sorted(allowed)}.")


@dataclass(frozen=True, slots=True)
class Distribution:
    """A distribution of seconds: ``fixed`` (value), ``uniform`` (low, high), ``lognormal``
    (median, sigma of the log)."""

    kind: Literal["fixed", "uniform", "lognormal"]
    a: float
    b: float = 0.0

    @classmethod
    def parse(cls, where: str, raw: object) -> Distribution:
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            raw = {"kind": "fixed", "value": raw}
        if not isinstance(raw, Mapping):
            raise FaultModelError(
                f"{where}: expected a number or an object such as "
                '{"kind": "lognormal", "median": 0.4, "sigma": 0.5}, got ' + repr(raw) + "."
            )
        kind = raw.get("kind")
        if kind == "fixed":
            _only(where, raw, {"kind", "value"})
            return cls("fixed", _number(where, raw, "value"))
        if kind == "uniform":
            _only(where, raw, {"kind", "low", "high"})
            low, high = _number(where, raw, "low"), _number(where, raw, "high")
            if high < low:
                raise FaultModelError(f"{where}: uniform needs low <= high, got {low} > {high}.")
            return cls("uniform", low, high)
        if kind == "lognormal":
            _only(where, raw, {"kind", "median", "sigma"})
            median = _number(where, raw, "median")
            if median <= 0:
                raise FaultModelError(f"{where}.median: must be > 0, got {median}.")
            return cls("lognormal", median, _number(where, raw, "sigma"))
        raise FaultModelError(
            f"{where}.kind: {kind!r} is not a distribution; use 'fixed', 'uniform' or 'lognormal'."
        )

    def sample(self, rng: random.Random) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return self.a * math.exp(rng.gauss(0.0, self.b)) if self.b > 0 else self.a

    def cdf(self, x: float) -> float:
        """P(sample <= x)."""
        if self.kind == "fixed":
            return 1.0 if x >= self.a else 0.0
        if self.kind == "uniform":
            if self.b == self.a:
                return 1.0 if x >= self.a else 0.0
            return min(1.0, max(0.0, (x - self.a) / (self.b - self.a)))
        if x <= 0:
            return 0.0
        if self.b == 0:
            return 1.0 if x >= self.a else 0.0
        return 0.5 * math.erfc(-(math.log(x / self.a)) / (self.b * math.sqrt(2.0)))

    def mean(self) -> float:
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return (self.a + self.b) / 2
        return self.a * math.exp(self.b**2 / 2)

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"fixed {self.a:g} s"
        if self.kind == "uniform":
            return f"uniform {self.a:g}-{self.b:g} s"
        return f"lognormal median {self.a:g} s, sigma {self.b:g}"


#: Seconds of precision lost between the fake provider writing an HTTP-date ``Retry-After`` (from
#: the real wall clock) and the runtime reading the wall clock to turn it into a wait.
HTTP_DATE_SLACK: Final = 0.5


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """How an error answer asks the client to wait: which header, on which statuses, and the
    distribution of the wait.

    ``http-date`` sends ``Retry-After: <IMF-fixdate>``. An HTTP date is absolute wall-clock time, and
    the runtime turns it into a wait with the real wall clock (``time.time()``), so the fake
    provider writes ``ceil(time.time() + wait)`` as the date and records the wait it really asks
    for, ``date - time.time()`` (in ``[wait, wait + 1)``). Between that and the runtime's reading a
    little real time passes (microseconds to a few milliseconds, more on a loaded machine), during
    which no virtual time passes: the mapping from wall time to virtual time is "the wall clock
    stands still while the runtime decides". A wait set by an HTTP date may therefore be shorter
    than the recorded one by up to :data:`HTTP_DATE_SLACK` s, never longer.
    """

    header: Literal["retry-after", "retry-after-ms", "http-date", "none"]
    wait: Distribution
    #: The statuses whose answers carry the header.
    on: tuple[str, ...] = ("429",)

    @classmethod
    def parse(cls, where: str, raw: object) -> RetryAfter:
        if raw is None:
            return cls("none", Distribution("fixed", 0.0))
        if not isinstance(raw, Mapping):
            raise FaultModelError(
                f"{where}: expected an object such as "
                '{"header": "retry-after-ms", "kind": "uniform", "low": 0.5, "high": 2}.'
            )
        header = raw.get("header", "retry-after-ms")
        if header not in ("retry-after", "retry-after-ms", "http-date", "none"):
            raise FaultModelError(
                f"{where}.header: {header!r}; use 'retry-after' (whole seconds), "
                "'retry-after-ms' (milliseconds), 'http-date' (Retry-After as an HTTP date) "
                "or 'none'."
            )
        on_raw = raw.get("on", ["429"])
        if (
            not isinstance(on_raw, list)
            or not on_raw
            or any(str(x) not in RETRY_AFTER_STATUSES for x in on_raw)
        ):
            raise FaultModelError(
                f"{where}.on: a non-empty list of statuses from {list(RETRY_AFTER_STATUSES)}, "
                f"got {on_raw!r}."
            )
        rest = {k: v for k, v in raw.items() if k not in ("header", "on")}
        return cls(header, Distribution.parse(where, rest), tuple(str(x) for x in on_raw))

    def header_value(self, seconds: float) -> tuple[str, str, float] | None:
        """(header name, header text, the wait the header really asks for), or None."""
        if self.header == "none":
            return None
        if self.header == "retry-after":
            whole = max(1, math.ceil(seconds))
            return "retry-after", str(whole), float(whole)
        if self.header == "http-date":
            now = time.time()
            when = math.ceil(now + max(seconds, 0.001))
            return "retry-after", email.utils.formatdate(when, usegmt=True), when - now
        ms = max(1, math.ceil(seconds * 1000))
        return "retry-after-ms", str(ms), ms / 1000.0

    def p_exceeds(self, cap: float) -> float:
        """P(the requested wait > cap), after the header's rounding."""
        if self.header == "none":
            return 0.0
        if self.header == "retry-after":
            # ceil(x) > cap  <=>  x > floor(cap)
            return 1.0 - self.wait.cdf(math.floor(cap))
        if self.header == "http-date":
            # the date rounds up to the next whole second of wall time: the wait grows by a
            # fraction u of a second, u about uniform on [0, 1)
            steps = 50
            return sum(1.0 - self.wait.cdf(cap - (i + 0.5) / steps) for i in range(steps)) / steps
        return 1.0 - self.wait.cdf(math.floor(cap * 1000) / 1000)


@dataclass(frozen=True, slots=True)
class Outage:
    """A window ``[start, end)`` of simulated seconds in which every request fails with ``status``
    (an HTTP status or ``reset``)."""

    start: float
    end: float
    status: str

    def active(self, t: float) -> bool:
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``rate`` tokens per simulated second, at most ``burst`` stored."""

    rate: float
    burst: float


@dataclass(frozen=True, slots=True)
class StreamCut:
    """With ``probability``, a streamed answer stops (connection dropped) after ``after_chunks``."""

    probability: float
    after_chunks: int


@dataclass(frozen=True, slots=True)
class ProviderFaults:
    """The fault model of one ``<provider>/<model>``."""

    key: str
    latency: Distribution = Distribution("fixed", 0.0)
    errors: Mapping[str, float] = field(default_factory=dict)
    retry_after: RetryAfter = RetryAfter("none", Distribution("fixed", 0.0))
    outages: tuple[Outage, ...] = ()
    rate_limit: RateLimit | None = None
    stream_cut: StreamCut | None = None
    #: Streams that stall, break or send an error event before (or break after) their first chunk.
    stream_faults: StreamFaults | None = None

    @classmethod
    def parse(cls, key: str, raw: object) -> ProviderFaults:
        where = f"providers[{key!r}]"
        if not isinstance(raw, Mapping):
            raise FaultModelError(f"{where}: expected an object, got {type(raw).__name__}.")
        _only(where, raw, set(PROVIDER_FIELDS))
        latency = Distribution.parse(f"{where}.latency", raw.get("latency", 0.0))
        errors_raw = raw.get("errors", {})
        if not isinstance(errors_raw, Mapping):
            raise FaultModelError(f"{where}.errors: expected an object of fault -> probability.")
        errors: dict[str, float] = {}
        for name, p in errors_raw.items():
            if name not in ERROR_KINDS:
                raise FaultModelError(
                    f"{where}.errors: {name!r} is not a fault; use one of {list(ERROR_KINDS)}."
                )
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 1:
                raise FaultModelError(
                    f"{where}.errors[{name!r}]: a probability in [0, 1], got {p!r}."
                )
            errors[name] = float(p)
        total = sum(errors.values())
        if total > 1 + 1e-12:
            raise FaultModelError(
                f"{where}.errors: probabilities add up to {total:g} > 1; what is left over "
                "is the chance of success, so they must add up to at most 1."
            )
        retry_after = RetryAfter.parse(f"{where}.retry_after", raw.get("retry_after"))
        outages = []
        for i, o in enumerate(raw.get("outages", ())):
            w = f"{where}.outages[{i}]"
            if not isinstance(o, Mapping):
                raise FaultModelError(f'{w}: expected {{"start": s, "end": s, "status": "503"}}.')
            _only(w, o, {"start", "end", "status"})
            start, end = _number(w, o, "start"), _number(w, o, "end")
            if end <= start:
                raise FaultModelError(f"{w}: end ({end}) must be after start ({start}).")
            status = str(o.get("status", "503"))
            if status not in ERROR_KINDS:
                raise FaultModelError(f"{w}.status: {status!r}; use one of {list(ERROR_KINDS)}.")
            outages.append(Outage(start, end, status))
        rate_limit = None
        if raw.get("rate_limit") is not None:
            rl = raw["rate_limit"]
            w = f"{where}.rate_limit"
            if not isinstance(rl, Mapping):
                raise FaultModelError(f'{w}: expected {{"rate": tokens_per_s, "burst": n}}.')
            _only(w, rl, {"rate", "burst"})
            rate, burst = _number(w, rl, "rate"), _number(w, rl, "burst", low=1.0)
            if rate <= 0:
                raise FaultModelError(f"{w}.rate: must be > 0 tokens per second, got {rate}.")
            rate_limit = RateLimit(rate, burst)
        stream_cut = None
        if raw.get("stream_cut") is not None:
            sc = raw["stream_cut"]
            w = f"{where}.stream_cut"
            if not isinstance(sc, Mapping):
                raise FaultModelError(f'{w}: expected {{"probability": p, "after_chunks": k}}.')
            _only(w, sc, {"probability", "after_chunks"})
            p = _number(w, sc, "probability")
            k = sc.get("after_chunks")
            if p > 1:
                raise FaultModelError(f"{w}.probability: at most 1, got {p}.")
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise FaultModelError(f"{w}.after_chunks: a whole number >= 0, got {k!r}.")
            stream_cut = StreamCut(p, k)
        stream_faults = None
        if raw.get("stream_faults") is not None:
            stream_faults = StreamFaults.parse(f"{where}.stream_faults", raw["stream_faults"])
        return cls(
            key, latency, errors, retry_after, tuple(outages), rate_limit, stream_cut, stream_faults
        )

    @property
    def stationary(self) -> bool:
        """Whether every request meets the same fault rates (no outage, no rate limit)."""
        return not self.outages and self.rate_limit is None

    def p_attempt(self, timeout: float, retry_after_cap: float) -> tuple[float, float]:
        """(P(transient failure), P(failure that leaves the model)) of one attempt, stationary.

        A 429 whose Retry-After exceeds the cap leaves the model as a permanent error does.
        """
        p_timeout = 1.0 - self.latency.cdf(timeout)
        served = 1.0 - p_timeout
        transient = p_timeout
        permanent = 0.0
        for name, p in self.errors.items():
            if name in PERMANENT_KINDS:
                permanent += served * p
            elif name in self.retry_after.on:
                over = self.retry_after.p_exceeds(retry_after_cap)
                permanent += served * p * over
                transient += served * p * (1 - over)
            else:
                transient += served * p
        return transient, permanent


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the fake provider does with one request."""

    kind: OutcomeKind
    #: Simulated seconds before the answer (or the error) arrives.
    latency: float
    #: ``(header, text, seconds)`` for an answer that carries Retry-After.
    retry_after: tuple[str, str, float] | None = None
    #: For a streamed 200: the chunk after which the connection drops (None: complete).
    cut_after: int | None = None
    #: What produced it: ``mix``, ``outage``, ``rate_limit``, ``timeout``, ``ok`` or ``cut``;
    #: or a stream fault kind (``chaos.stream_faults.STREAM_FAULT_KINDS``).
    source: str = "ok"
    #: For a streamed 200: simulated seconds between the headers and the first chunk.
    stall: float = 0.0
    #: For a streamed 200: the status its first event (an error event) names.
    error_event: str | None = None


class FaultSampler:
    """Draws outcomes for one ``<provider>/<model>`` from its own seeded generator.

    Token-bucket state lives here, so one sampler serves one simulated provider.
    """

    def __init__(self, faults: ProviderFaults, seed: int) -> None:
        self.faults = faults
        self.rng = random.Random(seed)
        cumulative = []
        acc = 0.0
        for name in ERROR_KINDS:
            p = faults.errors.get(name, 0.0)
            if p > 0:
                acc += p
                cumulative.append((acc, name))
        self._cumulative = tuple(cumulative)
        rl = faults.rate_limit
        self._tokens = rl.burst if rl is not None else 0.0
        self._last = 0.0

    def _take_token(self, now: float) -> float | None:
        """Take a token at ``now``; ``None`` if one was there, else the exact wait to the next."""
        rl = self.faults.rate_limit
        assert rl is not None
        if now > self._last:
            self._tokens = min(rl.burst, self._tokens + (now - self._last) * rl.rate)
            self._last = now
        if self._tokens >= 1.0 - 1e-9:
            self._tokens -= 1.0
            return None
        return (1.0 - self._tokens) / rl.rate

    def draw(self, now: float, timeout: float, stream: bool) -> Outcome:
        f = self.faults
        for outage in f.outages:
            if outage.active(now):
                kind: Any = outage.status
                if kind == "read_timeout":
                    return Outcome("read_timeout", timeout, source="outage")
                return Outcome(kind, 0.0, source="outage")
        if f.rate_limit is not None:
            wait = self._take_token(now)
            if wait is not None:
                ms = max(1, math.ceil(wait * 1000 - 1e-6))
                return Outcome(
                    "429", 0.0, ("retry-after-ms", str(ms), ms / 1000.0), source="rate_limit"
                )
        latency = f.latency.sample(self.rng)
        if latency > timeout:
            return Outcome("read_timeout", timeout, source="timeout")
        if self._cumulative:
            u = self.rng.random()
            for acc, name in self._cumulative:
                if u < acc:
                    if name == "read_timeout":
                        return Outcome("read_timeout", timeout, source="mix")
                    ra = None
                    if name in f.retry_after.on:
                        ra = f.retry_after.header_value(f.retry_after.wait.sample(self.rng))
                    return Outcome(name, latency, ra, source="mix")  # type: ignore[arg-type]
        cut = None
        if stream and f.stream_cut is not None and self.rng.random() < f.stream_cut.probability:
            cut = f.stream_cut.after_chunks
        if stream and cut is None and f.stream_faults is not None:
            sf = f.stream_faults
            fault = sf.draw(self.rng)
            if fault is not None:
                return Outcome(
                    "ok",
                    latency,
                    cut_after=sf.cut_after(fault),
                    source=fault,
                    stall=sf.stall_seconds if fault == "stall" else 0.0,
                    error_event=sf.error_status if fault == "error_event" else None,
                )
        return Outcome("ok", latency, cut_after=cut, source="ok" if cut is None else "cut")
