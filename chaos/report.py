"""The report: ``summary.md`` (for a person), ``results.json`` (for a machine) and plots."""

from __future__ import annotations

import itertools
import json
import math
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import power
from .mutants import MUTANTS
from .mutants import caught as mutant_caught
from .results import CheckResult, JobResult
from .scenario import Scenario

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_OUTCOME_COLOURS = {
    "ok": "#2ca02c",
    "429": "#ff7f0e",
    "408": "#bcbd22",
    "500": "#d62728",
    "502": "#e377c2",
    "503": "#9467bd",
    "409": "#aec7e8",
    "400": "#8c564b",
    "401": "#7f7f7f",
    "403": "#c49c94",
    "404": "#dbdb8d",
    "422": "#f7b6d2",
    "reset": "#17becf",
    "read_timeout": "#1f77b4",
}


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
            }
            for r in results
        ],
    }
    # strict JSON: NaN and infinities become null
    text = json.dumps(_sanitize(data), indent=2, default=_json_default, allow_nan=False)
    path.write_text(text + "\n", encoding="utf-8")
    return data


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


# -- plots ---------------------------------------------------------------------------------
def plot_all(out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    files = []
    for fn in (_plot_weights, _plot_timelines, _plot_latency, _plot_waits):
        name = fn(out, results, scenarios)
        if name:
            files.append(name)
    return files


def _save(fig: Figure, path: Path) -> str:
    """Write the figure (PNG, 110 dpi) and free it; the file name goes into the report."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _finish_grid(
    fig: Figure, axes: Any, used: int, title: str, title_size: float, path: Path
) -> str:
    """A grid of panels: blank the cells left over, title the figure, lay it out and save it."""
    for ax in list(axes.flat)[used:]:
        ax.axis("off")
    fig.suptitle(title, fontsize=title_size)
    fig.tight_layout()
    return _save(fig, path)


def _plot_weights(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    import matplotlib.pyplot as plt

    panels = []
    for r in results:
        if r.mutant is not None:
            continue
        for c in r.checks:
            if c.name == "first_choice_weights" and "table" in c.details:
                panels.append(
                    (
                        f"{r.scenario}: first choice [{c.path}, n={c.n}]",
                        c.details["table"],
                        c.passed,
                    )
                )
            if c.name == "fallback_weights":
                table = c.details.get("table")
                if table is None:
                    groups = [g for g in c.details.get("groups", []) if g.get("used")]
                    if groups:
                        table = groups[0]["table"]
                        label = f"after {', '.join(groups[0]['failed'])} failed"
                    else:
                        continue
                else:
                    label = f"after {', '.join(c.details.get('failed', []))} failed"
                panels.append(
                    (f"{r.scenario}: fallback {label} [{c.path}, n={c.n}]", table, c.passed)
                )
    if not panels:
        return None
    cols = 2
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(12, 3.0 * rows), squeeze=False)
    for ax, (title, table, passed) in zip(axes.flat, panels, strict=False):
        labels = [
            f"{row['model']}\n{row['expected']:.3f} expected\n{row['observed']:.4f} observed"
            for row in table
        ]
        dev = [100 * (row["observed"] - row["expected"]) for row in table]
        lo = [100 * (row["observed"] - row["ci99"][0]) for row in table]
        hi = [100 * (row["ci99"][1] - row["observed"]) for row in table]
        x = list(range(len(table)))
        ax.axhspan(-1, 1, color="#dddddd", label="±1 point (what the sample size is powered for)")
        ax.axhline(0, color="black", linewidth=0.8)
        ax.errorbar(
            x,
            dev,
            yerr=[lo, hi],
            fmt="o",
            capsize=5,
            color="#1f77b4" if passed else "#d62728",
            label="observed - expected, 99% CI",
        )
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_xlim(-0.5, len(table) - 0.5)
        span = max([3.0, *(abs(d) + h for d, h in zip(dev, hi, strict=True))])
        ax.set_ylim(-span * 1.15, span * 1.15)
        ax.set_ylabel("points", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6, loc="upper right")
    return _finish_grid(
        fig,
        axes,
        len(panels),
        "Model shares: observed minus expected weight, in percentage points (Wilson 99% intervals)",
        11,
        out / "weights.png",
    )


def _plot_timelines(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    chosen = [r for r in results if r.mutant is None and r.plot.get("timeline")]
    chosen = [
        r
        for r in chosen
        if r.scenario
        in (
            "flaky-5xx",
            "rate-limited",
            "weighted-failing",
            "outage-primary",
            "slow-timeout",
            "async-concurrent",
            "jittered-backoff",
        )
    ]
    if not chosen:
        return None
    fig, axes = plt.subplots(len(chosen), 1, figsize=(12, 2.8 * len(chosen)), squeeze=False)
    for ax, r in zip(axes.flat, sorted(chosen, key=lambda r: r.scenario), strict=False):
        lines = [t for t in r.plot["timeline"] if len(t["attempts"]) > 1][:14] or r.plot[
            "timeline"
        ][:14]
        models = sorted({a[0] for t in lines for a in t["attempts"]})
        for y, t in enumerate(lines):
            for key, s, e, outcome in t["attempts"]:
                width = max(e - s, 0.05)
                ax.barh(
                    y,
                    width,
                    left=s,
                    height=0.6,
                    color=_OUTCOME_COLOURS.get(outcome, "k"),
                    edgecolor="black",
                    linewidth=0.3,
                )
                ax.text(
                    s + width / 2,
                    y,
                    key.split("/")[0][0] + str(models.index(key)),
                    fontsize=6,
                    ha="center",
                    va="center",
                    color="white",
                )
            atts = t["attempts"]
            for (_, _, e1, _), (_, s2, _, _) in itertools.pairwise(atts):
                ax.plot([e1, s2], [y, y], color="#999999", linewidth=0.8, linestyle=":")
        ax.set_yticks(range(len(lines)), [f"req {t['request']}" for t in lines], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("virtual seconds since the request started (dotted: waits)", fontsize=8)
        legend_models = ", ".join(f"{k.split('/')[0][0]}{i}={k}" for i, k in enumerate(models))
        ax.set_title(f"{r.scenario}: attempt timelines ({legend_models})", fontsize=9)
    handles = [Patch(color=c, label=k) for k, c in _OUTCOME_COLOURS.items()]
    fig.legend(handles=handles, loc="upper center", ncol=10, fontsize=7, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    return _save(fig, out / "timelines.png")


def _plot_latency(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    import matplotlib.pyplot as plt
    import numpy as np

    panels = []
    for r in results:
        if r.mutant is not None or r.scenario not in scenarios:
            continue
        s = scenarios[r.scenario]
        if s.mode == "server":
            continue
        for key, values in sorted(r.plot.get("latencies", {}).items()):
            if len(values) >= 30 and s.providers[key].latency.kind != "fixed":
                panels.append((r.scenario, key, values, s.providers[key].latency, s.timeouts[key]))
    if not panels:
        return None
    panels = panels[:12]
    cols = 3
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(13, 2.8 * rows), squeeze=False)
    for ax, (scen, key, values, dist, timeout) in zip(axes.flat, panels, strict=False):
        values = np.asarray(values)
        hi = min(max(float(values.max()), dist.mean() * 2.5), timeout * 1.05)
        grid = np.linspace(1e-6, hi, 300)
        ax.hist(
            values,
            bins=40,
            range=(0, hi),
            density=True,
            color="#1f77b4",
            alpha=0.6,
            label="observed",
        )
        # attempts beyond the timeout never answer: the expected density is truncated there
        served = max(dist.cdf(timeout), 1e-12)
        cdf = np.array([min(dist.cdf(x), served) for x in grid])
        pdf = np.gradient(cdf, grid) / served
        ax.plot(grid, pdf, color="black", linewidth=1, label=dist.describe())
        if timeout <= hi:
            ax.axvline(
                timeout,
                color="#d62728",
                linestyle="--",
                linewidth=1,
                label=f"timeout {timeout:g} s",
            )
        ax.set_xlim(0, hi)
        ax.set_title(f"{scen}: {key} (n={len(values)})", fontsize=8)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=7)
    return _finish_grid(
        fig,
        axes,
        len(panels),
        "Latency of answered attempts (virtual seconds) vs the fault model's distribution",
        10,
        out / "latency.png",
    )


def _plot_waits(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    import matplotlib.pyplot as plt
    import numpy as np

    main = sorted(
        (r for r in results if r.mutant is None and r.plot.get("waits")), key=lambda r: r.scenario
    )
    if not main:
        return None
    jittered = [r for r in main if r.plot.get("jitter_draws")]
    fig, axes = plt.subplots(
        1, 2 if jittered else 1, figsize=(13 if jittered else 7, 5.6), squeeze=False
    )
    ax = axes[0][0]
    for r in main:
        pairs = r.plot["waits"]
        ax.scatter([p[0] for p in pairs], [p[1] for p in pairs], s=8, alpha=0.5, label=r.scenario)
    lim = ax.get_xlim()[1]
    ax.plot([0, lim], [0, lim], color="black", linewidth=0.8, label="observed = expected")
    for r in jittered:
        j = scenarios[r.scenario].jitter
        ax.plot(
            [0, lim],
            [0, lim * (1 - j)],
            color="black",
            linewidth=0.8,
            linestyle="--",
            label=f"lower bound with jitter {j:g}",
        )
    ax.set_xlabel("expected wait: max(backoff ** k, Retry-After), 0 for a fallback (s)")
    ax.set_ylabel("observed gap between attempts at the provider (s)")
    ax.set_title("Every wait between attempts (virtual time; e2e: scaled real time)", fontsize=10)
    ax.legend(fontsize=7)
    if jittered:
        ax2 = axes[0][1]
        for r in jittered:
            u = np.sort(np.asarray(r.plot["jitter_draws"]))
            ecdf = np.arange(1, len(u) + 1) / len(u)
            ax2.step(u, ecdf, where="post", label=f"{r.scenario} (n={len(u)})")
        ax2.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--", label="U[0, 1)")
        ax2.set_xlabel("jitter draw u recovered from the wait: (1 - wait / backoff ** k) / jitter")
        ax2.set_ylabel("empirical CDF")
        ks = [c for r in jittered for c in r.checks if c.name == "backoff_waits"]
        note = ", ".join(
            f"KS D={c.statistic:.4f}, p={c.p_value:.3g}" for c in ks if c.p_value is not None
        )
        ax2.set_title(f"Jitter draws vs uniform ({note})", fontsize=10)
        ax2.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, out / "waits.png")


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
    """One line per scenario: what the runtime did to its callers, and whether its checks passed."""
    L = [
        "## At a glance",
        "",
        "Per scenario (virtual seconds; a call's time runs from its first request to its outcome):",
        "",
        "| scenario | calls | success | p50 s | p99 s | HTTP requests / call | waiting s / call | checks |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in s.main:
        g = r.plot.get("glance")
        passed = sum(c.passed for c in r.checks)
        verdict = (
            "all passed" if passed == len(r.checks) else f"**{len(r.checks) - passed} failed**"
        )
        if not g:
            L.append(f"| {r.scenario} | {r.n:,} | | | | | | {verdict} |")
            continue
        L.append(
            f"| {r.scenario} | {g['calls']:,} | {g['success']:.2%} | {g['p50_s']:.2f} | "
            f"{g['p99_s']:.2f} | {g['http_per_call']:.2f} | {g['wait_per_call_s']:.2f} | {verdict} |"
        )
    return [*L, ""]


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
