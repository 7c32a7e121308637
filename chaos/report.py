"""The report: ``summary.md`` (for a person), ``results.json`` (for a machine) and plots."""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import power
from .mutants import MUTANTS
from .mutants import caught as mutant_caught
from .plots import CAPTIONS
from .plots import plot_all as plot_all  # the runner's entry point to the plots
from .results import CheckResult, JobResult
from .scenario import Scenario


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        if math.isnan(v):
            return "—"
        if math.isinf(v):
            return "∞"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3g}"
        return f"{v:.{digits}g}"
    return str(v)


def mutant_verdicts(results: Sequence[JobResult]) -> list[dict[str, Any]]:
    out = []
    for res in results:
        if res.mutant is None:
            continue
        m = MUTANTS[res.mutant]
        target = [c for c in res.checks if c.name == m.check]
        caught = mutant_caught(m.name, res.checks)
        others = sorted({c.name for c in res.checks if not c.passed and c.name != m.check})
        out.append(
            {
                "mutant": m.name,
                "description": m.description,
                "scenario": res.scenario,
                "check": m.check,
                "n": res.n,
                "seed": res.seed,
                "caught": caught,
                "also_failed": others,
                "evidence": [
                    {
                        "path": c.path,
                        "passed": c.passed,
                        "statistic": c.statistic,
                        "p_value": c.p_value,
                        "n": c.n,
                        "summary": c.summary,
                    }
                    for c in target
                ],
                "error": res.error,
            }
        )
    return sorted(out, key=lambda d: d["mutant"])


def write_json(path: Path, results: Sequence[JobResult], run: dict[str, Any]) -> dict[str, Any]:
    checks = [c.as_json() for r in results if r.mutant is None for c in r.checks]
    for c in checks:
        c.pop("mutant", None)
    data = {
        "run": run,
        "checks": checks,
        "mutants": mutant_verdicts(results),
        "jobs": [
            {
                "label": r.label,
                "n": r.n,
                "seed": r.seed,
                "wall_s": round(r.wall_s, 2),
                "cpu_s": round(r.cpu_s, 2),
                "virtual_s": round(r.virtual_s, 1),
                "http_requests": r.http_requests,
                "max_in_flight": r.max_in_flight,
                "error": r.error,
                **_outcome_json(r),
            }
            for r in results
        ],
    }
    # strict JSON: NaN and infinities become null
    text = json.dumps(_sanitize(data), indent=2, default=_json_default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return data


def _outcome_json(r: JobResult) -> dict[str, Any]:
    """What the run did to its callers (the at-a-glance numbers) and, when the run has the
    baseline, what the plain SDK did on the same faults."""
    out: dict[str, Any] = {}
    if r.plot.get("glance"):
        out["glance"] = r.plot["glance"]
    plain = _plain(r)
    if plain is not None:
        b = r.plot["baseline"]
        out["plain_sdk"] = {
            "model": b["plain_model"],
            "max_retries": b["plain_max_retries"],
            "timeout": b["plain_timeout"],
            "calls": b["calls"],
            "success": plain[0],
            "p99_s": plain[1],
        }
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, float):
        return None
    if isinstance(o, set | frozenset | tuple):
        return list(o)
    return str(o)


def _sanitize(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _sanitize(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_sanitize(v) for v in o]
    return o


# -- summary.md ----------------------------------------------------------------------------
def _fault_lines(s: Scenario) -> list[str]:
    lines = []
    for key in s.order:
        f = s.providers[key]
        parts = [f"latency {f.latency.describe()}"]
        if f.errors:
            parts.append("errors " + ", ".join(f"{k} {v:.0%}" for k, v in f.errors.items()))
        if f.retry_after.header != "none" and any(f.errors.get(k) for k in f.retry_after.on):
            parts.append(
                f"{'/'.join(f.retry_after.on)} with {f.retry_after.header}: "
                f"{f.retry_after.wait.describe()}"
            )
        for o in f.outages:
            parts.append(f"outage {o.start:g}-{o.end:g} s ({o.status})")
        if f.rate_limit:
            parts.append(f"token bucket {f.rate_limit.rate:g}/s, burst {f.rate_limit.burst:g}")
        if f.stream_cut:
            parts.append(
                f"streams cut after {f.stream_cut.after_chunks} chunks ({f.stream_cut.probability:.0%})"
            )
        lines.append(f"  - `{key}`: " + "; ".join(parts))
    return lines


@dataclass
class Summary:
    """What every section of ``summary.md`` reads."""

    results: Sequence[JobResult]
    scenarios: dict[str, Scenario]
    run: dict[str, Any]
    plots: list[str]

    @property
    def main(self) -> list[JobResult]:
        return sorted((r for r in self.results if r.mutant is None), key=lambda r: r.scenario)

    @property
    def checks(self) -> list[CheckResult]:
        return [c for r in self.main for c in r.checks]

    @property
    def mutants(self) -> list[dict[str, Any]]:
        return mutant_verdicts(self.results)


def section_header(s: Summary) -> list[str]:
    checks = s.checks
    failed = [c for c in checks if not c.passed]
    mutants = s.mutants
    missed = [m for m in mutants if not m["caught"]]
    errors = [r for r in s.results if r.error]
    ok = not failed and not missed and not errors
    run = s.run
    return [
        "# Chaos suite report",
        "",
        f"**{'PASSED' if ok else 'FAILED'}**: {len(checks) - len(failed)}/{len(checks)} checks "
        f"passed, {len(mutants) - len(missed)}/{len(mutants)} broken runtimes caught.",
        "",
        f"- Run: `{run['command']}`, {run['mode']} seed {run['seed']} "
        f"({'fresh' if run['random_seed'] else 'fixed: CI never flakes'}), "
        f"{'quick (reduced sizes)' if run['quick'] else 'full sizes'}.",
        f"- Wall time: **{run['wall_s']:.1f} s** on {run['workers']} worker process(es) "
        f"({run['cpus']} cores; {run.get('cpu_s', 0):.0f} s of CPU time in all, so the wall time "
        f"also shows how much else the machine was running"
        + (f"; load average {run['load']}" if run.get("load") else "")
        + f"); openai {run['openai']}, Python {run['python']}, {run['platform']}.",
        _idle_estimate(s),
        f"- Requests simulated: {run['requests']:,}; HTTP requests answered: "
        f"{run['http_requests']:,}; virtual time simulated: {run['virtual_s']:,.0f} s.",
        f"- Significance: alpha = {power.ALPHA}; sample sizes by power analysis for a "
        f"{power.DELTA * 100:g}-point deviation at power {power.POWER} (see below).",
        "",
    ]


def _idle_estimate(s: Summary) -> str:
    """What the run would take on idle cores: its jobs' CPU seconds, packed longest first."""
    cpu = sorted((r.cpu_s for r in s.results), reverse=True)
    workers = max(1, int(s.run.get("workers", 1)))
    load = [0.0] * workers
    for c in cpu:
        load[load.index(min(load))] += c
    return (
        f"- CPU time of the jobs: {sum(cpu):.0f} s (longest job {cpu[0] if cpu else 0:.0f} s): "
        f"on {workers} idle core(s) the run would take about {max(load):.0f} s plus start-up "
        "(the jobs packed longest first; an estimate from this run's CPU times, not a measurement)."
    )


def section_glance(s: Summary) -> list[str]:
    """One line per scenario: what the runtime did to its callers, and whether its checks passed;
    with the plain SDK on the same faults beside it when the run has that baseline."""
    with_plain = any(_plain(r) for r in s.main)
    head = (
        "| scenario | calls | success | p50 s | p99 s | HTTP requests / call | waiting s / call |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|"
    if with_plain:
        head += " plain SDK: success | plain SDK: p99 s |"
        rule += "---:|---:|"
    L = [
        "## At a glance",
        "",
        "Per scenario (virtual seconds; a call's time runs from its first request to its outcome):",
        "",
        head + " checks |",
        rule + "---|",
    ]
    for r in s.main:
        g = r.plot.get("glance")
        passed = sum(c.passed for c in r.checks)
        verdict = (
            "all passed" if passed == len(r.checks) else f"**{len(r.checks) - passed} failed**"
        )
        plain = _plain(r)
        extra = ""
        if with_plain:
            extra = f" {plain[0]:.2%} | {plain[1]:.2f} |" if plain else " | |"
        if not g:
            L.append(f"| {r.scenario} | {r.n:,} | | | | | |{extra} {verdict} |")
            continue
        L.append(
            f"| {r.scenario} | {g['calls']:,} | {g['success']:.2%} | {g['p50_s']:.2f} | "
            f"{g['p99_s']:.2f} | {g['http_per_call']:.2f} | {g['wait_per_call_s']:.2f} |"
            f"{extra} {verdict} |"
        )
    if with_plain:
        most = max(int((r.plot.get("baseline") or {}).get("calls", 0)) for r in s.main)
        L += [
            "",
            "Plain SDK: the same faults met without notdiamond, by a client of the configuration's "
            "main model with the SDK's own retries and the scenario's timeout, over the run's "
            f"first calls (at most {most:,}; `chaos/baseline.py`). Its p99 is of the time to "
            "outcome, as on the left: a call that fails at once is quick, so read it with its "
            "success rate (`outcomes.png` shows both).",
        ]
    return [*L, ""]


def _plain(r: JobResult) -> tuple[float, float] | None:
    """(success rate, p99 of time to outcome) of the plain-SDK baseline, if the run has one."""
    import numpy as np

    b = r.plot.get("baseline") or {}
    calls = b.get("plain_sdk")
    if not calls:
        return None
    ok = sum(1 for _, good in calls if good) / len(calls)
    return ok, float(np.percentile([t for t, _ in calls], 99))


def section_failures(s: Summary) -> list[str]:
    failed = [c for c in s.checks if not c.passed]
    missed = [m for m in s.mutants if not m["caught"]]
    errors = [r for r in s.results if r.error]
    L = ["## What failed", ""]
    if not failed and not missed and not errors:
        L.append("Nothing: every check passed and every broken runtime was caught.")
    for c in failed:
        L.append(f"- **{c.scenario} / {c.name}** [{c.path}] ({c.verdict}): {c.summary}")
        for k in ("violations", "problems", "wrong", "examples"):
            if c.details.get(k):
                L.append(f"  - {k}: `{json.dumps(_sanitize(c.details[k]), default=str)[:600]}`")
    for m in missed:
        L.append(f"- **mutant {m['mutant']} not caught** by {m['check']} on {m['scenario']}")
    for r in errors:
        L.append(f"- **{r.label} crashed**:\n\n```\n{(r.error or '').strip()[-2000:]}\n```")
    L.append("")
    return L


def _config_line(sc: Scenario) -> str:
    models = dict(zip(sc.order, sc.weights, strict=True)) if sc.weights else list(sc.order)
    parts = [f"models={models}"]
    for name in ("max_retries", "timeout", "backoff"):
        if name in sc.config:
            parts.append(f"{name}={sc.config[name]}")
    parts.append(f"retry_after_cap={sc.retry_after_cap:g}")
    if sc.jitter:
        parts.append(f"jitter={sc.jitter:g}")
    with_messages = [k for k, m in sc.messages.items() if m]
    if with_messages:
        parts.append(f"model_messages for {with_messages}")
    return "- Configuration: " + ", ".join(parts)


def section_scenarios(s: Summary) -> list[str]:
    L = ["## What was simulated", ""]
    for r in s.main:
        sc = s.scenarios[r.scenario]
        mode = {
            "sync": "sync clients, in-process transport, virtual clock",
            "async": "async clients, in-process transport, virtual-time event loop",
            "server": f"sync clients over real sockets to the loopback server (delays x{sc.time_scale:g})",
            "fleet": (
                f"{sc.fleet.processes if sc.fleet else 0} processes sharing one Redis and the "
                "loopback server (real sockets, real time; the requests split evenly)"
            ),
        }[sc.mode]
        L += [f"### {sc.name}", "", sc.description, ""]
        L.append(
            f"- {r.n:,} requests (`model={sc.traffic.model!r}`, one every {sc.traffic.interval:g} s"
            + (f", {sc.traffic.stream:.0%} streamed" if sc.traffic.stream else "")
            + f"); {mode}; seed {r.seed}."
        )
        L.append(_config_line(sc))
        L.append("- Faults:")
        L.extend(_fault_lines(sc))
        L.append(
            f"- Ran in {r.wall_s:.1f} s of wall time for {r.virtual_s:,.0f} s of simulated time; "
            f"{r.http_requests:,} HTTP requests"
            + (f"; up to {r.max_in_flight} requests in flight" if r.max_in_flight else "")
            + "."
        )
        L.append("")
    return L


def section_checks(s: Summary) -> list[str]:
    L = [
        "## Checks",
        "",
        "| scenario | check | path | method | statistic | p-value | n | n by power analysis | seed | result |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in s.checks:
        L.append(
            f"| {c.scenario} | {c.name} | {c.path} | {c.method} | {_fmt(c.statistic)} | {_fmt(c.p_value)} | "
            f"{c.n:,} | {f'{c.required_n:,}' if c.required_n else '—'} | {c.seed} | "
            + {"pass": "pass", "fail": "**FAIL**", "not exercised": "**NOT EXERCISED**"}[c.verdict]
            + ("" if c.exercised or not c.passed else " (nothing to judge; none predicted)")
            + " |"
        )
    L += [
        "",
        "Statistic: chi-square for weights, the observed success rate for `success_rate`, the "
        "number of violations for the exact checks, the largest deviation in seconds for "
        "`backoff_waits` (the Kolmogorov-Smirnov D of the jitter draws when the scenario sets "
        "`jitter`). An exact check that saw no event to judge is NOT EXERCISED (a failure) when "
        "the fault rates predicted at least 14 such events (P(none) < 1e-6).",
        "",
    ]
    for r in s.main:
        L += [f"**{r.scenario}**", ""]
        for c in r.checks:
            L.append(f"- `{c.name}` [{c.path}]: {c.summary}.")
            if c.name in ("first_choice_weights", "fallback_weights") and c.n and c.path == "sdk":
                d = c.details.get("detectable_delta")
                if d:
                    at = c.details.get("detectable_n") or c.n
                    group = " in its largest group" if "detectable_n" in c.details else ""
                    L.append(
                        f"  At n={at:,}{group} the test detects a {d * 100:.2f}-point deviation "
                        f"with power {power.POWER} (the power analysis asks {c.required_n:,} for "
                        "1 point)."
                    )
        L.append("")
    return L


def section_mutants(s: Summary) -> list[str]:
    L = [
        "## Broken runtimes (the checks must be able to fail)",
        "",
        "| mutant | what is broken | scenario | target check | n | caught | evidence |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in s.mutants:
        ev = (
            "; ".join(f"[{e['path']}] {e['summary']}" for e in m["evidence"])
            or (m["error"] or "")[:200]
        )
        L.append(
            f"| {m['mutant']} | {m['description']} | {m['scenario']} | {m['check']} | {m['n']:,} | "
            f"{'**yes**' if m['caught'] else '**NO**'} | {ev} |"
        )
    L.append("")
    return L


def section_detection_power(s: Summary) -> list[str]:
    """Per mutant: caught at the fixed seed, and the rate over fresh seeds (``--detection``)."""
    rates: dict[str, dict[str, Any]] = s.run.get("detection", {})
    if not s.mutants and not rates:
        return []
    L = [
        "## Detection power",
        "",
        "Each broken runtime at this run's seed, and (from `python -m chaos --detection K`) the "
        "share of K fresh seeds at which its target check caught it. Exact checks are sized so "
        "the broken behaviour shows with probability 1 - 1e-6; statistical ones by power analysis "
        "for the mutant's own deviation at power 0.99 (alpha 0.001), so each is caught at least "
        "99% of the time by design.",
        "",
        "| mutant | target check | kind | caught at this seed | n per fresh run | fresh seeds | caught | rate |",
        "|---|---|---|---|---|---|---|---|",
    ]
    caught_here = {m["mutant"]: m["caught"] for m in s.mutants}
    for name in sorted(set(caught_here) | set(rates)):
        m = MUTANTS.get(name)
        if m is None:
            continue
        d = rates.get(name)
        here = caught_here.get(name)
        L.append(
            f"| {name} | {m.check} | {'statistical' if m.statistical else 'exact'} | "
            + ("—" if here is None else ("yes" if here else "**NO**"))
            + " | "
            + (
                f"{d['n']:,} | {d['seeds']} | {d['caught']} | {d['caught'] / d['seeds']:.0%}"
                if d
                else "— | — | — | —"
            )
            + " |"
        )
    batches: dict[str, list[str]] = {}
    for name, d in sorted(rates.items()):
        key = f"{d.get('sizes', '?')} sizes, seeds {d.get('seed_list', [])}"
        batches.setdefault(key, []).append(name)
    for key, names in batches.items():
        L += ["", f"Measured at {key}: {', '.join(names)}."]
    L.append("")
    return L


def section_sizes(s: Summary) -> list[str]:
    return ["## Sample sizes", "", *s.run.get("power_notes", []), ""]


def section_plots(s: Summary) -> list[str]:
    if not s.plots:
        return []
    L = ["## Plots", ""]
    for p in s.plots:
        L += [f"![{p}]({p})", ""]
        if p in CAPTIONS:
            L += [CAPTIONS[p], ""]
    return L


#: The sections of ``summary.md``, in order: each returns its lines.
SECTIONS = (
    section_header,
    section_glance,
    section_failures,
    section_scenarios,
    section_checks,
    section_mutants,
    section_detection_power,
    section_sizes,
    section_plots,
)


def write_summary(
    path: Path,
    results: Sequence[JobResult],
    scenarios: dict[str, Scenario],
    run: dict[str, Any],
    plots: list[str],
) -> None:
    summary = Summary(results, scenarios, run, plots)
    lines = [line for section in SECTIONS for line in section(summary)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def power_notes(scenarios: Sequence[Scenario], results: Sequence[JobResult]) -> list[str]:
    """The power analysis, in words and numbers, for the summary."""
    from .sizing import auto_sizes

    notes = [
        f"Each statistical check is sized to detect a {power.DELTA * 100:g}-point deviation at "
        f"alpha = {power.ALPHA} with power {power.POWER}: weights by the non-central chi-square "
        "(the least visible 1-point deviation), success rates by the binomial normal approximation. "
        "Computed by `chaos/power.py`:",
        "",
    ]
    seen = set()
    for s in scenarios:
        if s.weights is not None:
            w = tuple(x / sum(s.weights) for x in s.weights)
            if w not in seen:
                seen.add(w)
                notes.append(
                    f"- weights {'/'.join(f'{x:g}' for x in w)}: "
                    f"{power.chi2_sample_size(w):,} draws."
                )
        sizes = auto_sizes(s)
        if "success_rate" in sizes:
            notes.append(f"- {s.name}: success rate {sizes['success_rate']:,} requests.")
    notes.append("")
    notes.append(
        "Weighted draws through the real SDK cost about 2-4 ms per request on an idle 2-core "
        "machine (the SDK's request building and parsing; measured), so 88 thousand of them per "
        'scenario would not fit the time budget. Scenarios with `"n": "auto"` run at the power '
        "analysis's size; `weighted-failing`, `async-concurrent` and `high-failure` run a fixed n "
        "through the SDK (the checks above state the deviation that n detects with power 0.99, "
        "and claim no more), and `healthy` and `weighted-failing` also run checks 1 and 2 at full "
        "size on the runtime's own selector (`path = selector`; fallbacks after every set of "
        "failed models). `success_rate` on `high-failure` (predicted about 0.95) runs 4,000 "
        "requests, not the 1-point size: it detects a deviation of about 2.1 points. Mutant runs "
        "of statistical checks are sized by the same analysis for the mutant's own deviation "
        "(`weights_skewed`: 2 points; `uniform_fallback`: uniform against the renormalised "
        "weights, summed over the fallback groups); those of exact checks so that the broken "
        "behaviour shows at least once with probability 1 - 1e-6, from the fault rates."
    )
    return notes


def run_info(**kw: Any) -> dict[str, Any]:
    import openai

    info = {
        "openai": openai.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
    }
    info.update(kw)
    return info
