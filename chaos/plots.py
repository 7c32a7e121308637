"""The report's plots, one function per PNG; each returns its file name, or None when the run has
nothing for it.

Every model is labelled by its full name (``openai/gpt-4o``), never by a number or an
abbreviation; axes are scaled so that differences that matter show (shares of failed calls on a
symmetric-log axis, so 0.4% and 0% are apart; the calls still waiting for an answer on a log
axis); distributions are drawn as one ECDF or one histogram per model, never as a cloud of
overlapping points.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .results import JobResult
from .scenario import Scenario

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: The two series of the callers' plots.
LIBRARY = "notdiamond"
PLAIN = "plain SDK"
LIBRARY_COLOUR = "#1f77b4"
PLAIN_COLOUR = "#ff7f0e"

OUTCOME_COLOURS = {
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

#: Scenarios whose attempt timelines are drawn (the ones a timeline explains best).
TIMELINE_SCENARIOS = (
    "flaky-5xx",
    "rate-limited",
    "weighted-failing",
    "outage-primary",
    "slow-timeout",
    "async-concurrent",
    "jittered-backoff",
)

#: One line under each plot in summary.md: what it shows and how to read it.
CAPTIONS = {
    "outcomes.png": (
        "What callers got, per scenario: the share of calls still without an answer t seconds "
        "after they started (log scale; where a line levels off is the share that never got "
        "one), with notdiamond and with the plain SDK on the same faults (the configuration's "
        "main model, the SDK's own retries, the scenario's timeout), for the same first calls."
    ),
    "success.png": (
        "Calls that ended without an answer, per scenario, with notdiamond and with the plain "
        "SDK (symmetric-log axis: 0%, 0.4% and 10% are all apart)."
    ),
    "timelines.png": (
        "Attempt timelines of a few calls per scenario: one lane per model the call tried, "
        "coloured by the answer; dotted: the wait before the next attempt."
    ),
    "waits.png": (
        "Every wait between two attempts of one model, per model: the ECDF of the gaps the fake "
        "provider saw against the ECDF of the waits the configuration promises (backoff ** k or "
        "Retry-After) in the scenarios `backoff_waits` judges (over real sockets the gaps are "
        "scaled real time: a few real milliseconds late; an HTTP-date Retry-After may end up "
        "to 0.5 s early, which is not a miss); and the jitter draws recovered from "
        "jittered waits against uniform."
    ),
    "weights.png": (
        "Model shares: observed minus expected weight in percentage points, 99% intervals, "
        "against the ±1-point band the sample sizes are powered for."
    ),
    "provider_latency.png": (
        "The fake provider's answered latencies per model and latency distribution (from the "
        "scenario that answered it most) against the fault model's distribution: the harness's "
        "own fidelity, not what callers saw."
    ),
}


def plot_all(out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    main = sorted((r for r in results if r.mutant is None), key=lambda r: r.scenario)
    files = []
    for fn in PLOTS:
        name = fn(out, main, scenarios)
        if name:
            files.append(name)
    return files


# -- helpers -------------------------------------------------------------------------------
def _save(fig: Figure, path: Path) -> str:
    """Write the figure (PNG, 110 dpi) and free it; the file name goes into the report."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def _grid(n: int, cols: int, width: float, height: float) -> tuple[Figure, list[Axes]]:
    import matplotlib.pyplot as plt

    cols = max(1, min(cols, n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width, height * rows), squeeze=False)
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.axis("off")
    return fig, flat[:n]


def _log_seconds(ax: Axes) -> None:
    """A log x-axis of seconds labelled 0.1, 0.2, 0.5, 1, 2, 5... (no powers of ten)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _ecdf(values: Sequence[float]) -> tuple[list[float], list[float]]:
    xs = sorted(values)
    n = len(xs)
    return xs, [(i + 1) / n for i in range(n)]


def _pct(x: float) -> str:
    return f"{100 * x:.2f}%" if x < 1 else "100%"


def _baseline(r: JobResult) -> dict[str, Any] | None:
    b = r.plot.get("baseline")
    if not b or "error" in b or not b.get("notdiamond") or not b.get("plain_sdk"):
        return None
    return dict(b)


def _series(calls: Sequence[Sequence[Any]]) -> tuple[list[float], float, float, float]:
    """(times of the successful calls, share failed, p50, p99 of time to outcome)."""
    import numpy as np

    ok = [float(s) for s, good in calls if good]
    times = np.asarray([float(s) for s, _ in calls])
    p50, p99 = np.percentile(times, [50, 99])
    return ok, 1 - len(ok) / len(calls), float(p50), float(p99)


# -- what callers got ----------------------------------------------------------------------
def plot_outcomes(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    """Per scenario, the share of calls still without an answer after t seconds: notdiamond
    against the plain SDK on the same faults."""
    from matplotlib.ticker import FuncFormatter

    panels = [(r, b) for r in results if (b := _baseline(r)) is not None]
    if not panels:
        return None
    fig, axes = _grid(len(panels), 4, 17, 4.1)
    for ax, (r, b) in zip(axes, panels, strict=True):
        n = len(b["notdiamond"])
        floor = 0.5 / n
        right = 0.5
        for label, key, colour in (
            (LIBRARY, "notdiamond", LIBRARY_COLOUR),
            (f"{PLAIN} ({b['plain_model']})", "plain_sdk", PLAIN_COLOUR),
        ):
            calls = b[key]
            ok, failed, p50, p99 = _series(calls)
            xs, ys = _ecdf(ok) if ok else ([], [])
            answered = len(ok) / len(calls)
            # still waiting at t = 1 - (share answered by t); where some never got an answer the
            # line levels off at their share, where all did it drops off the bottom of the axis
            waiting = [max(1 - y * answered, floor / 10) for y in ys]
            tail = [] if failed == 0 else [1e9]
            ax.step(
                [0.0, *xs, *tail],
                [1.0, *waiting, *([waiting[-1] if waiting else 1.0] if tail else [])],
                where="post",
                color=colour,
                linewidth=1.5,
                label=f"{label}: {_pct(1 - failed)} answered, p50 {p50:.2f} s, p99 {p99:.2f} s",
            )
            right = max(right, p99 * 1.15)
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g}%"))
        ax.set_ylim(floor * 0.8, 1.6)
        ax.set_xlim(0, right)
        ax.set_title(f"{r.scenario} (first {n:,} calls)", fontsize=9)
        ax.set_xlabel("seconds since the call started (virtual)", fontsize=7)
        ax.set_ylabel("share of calls still without an answer", fontsize=7)
        ax.tick_params(labelsize=7)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    fig.suptitle(
        "What callers got: notdiamond against the plain OpenAI SDK on the same faults "
        f"(the SDK's own retries, max_retries={panels[0][1]['plain_max_retries']}, and the "
        "scenario's timeout; where a line levels off: the calls that never got an answer)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    return _save(fig, out / "outcomes.png")


def plot_success(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    """Per scenario, the share of calls that ended without an answer: both series, an axis on
    which 0%, 0.4% and 10% are all apart."""
    import matplotlib.pyplot as plt

    rows = [(r.scenario, b) for r in results if (b := _baseline(r)) is not None]
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(10, 0.36 * len(rows) + 1.8))
    biggest = 0.0
    for y, (_, b) in enumerate(rows):
        shares = {}
        for key in ("notdiamond", "plain_sdk"):
            calls = b[key]
            shares[key] = 100 * sum(1 for _, ok in calls if not ok) / len(calls)
        biggest = max(biggest, *shares.values())
        ax.plot([shares["notdiamond"], shares["plain_sdk"]], [y, y], color="#bbbbbb", zorder=1)
        for key, colour, dy in (
            ("notdiamond", LIBRARY_COLOUR, -0.22),
            ("plain_sdk", PLAIN_COLOUR, 0.22),
        ):
            ax.scatter(shares[key], y, color=colour, s=36, zorder=2)
            ax.annotate(
                f"{shares[key]:.2f}%",
                (shares[key], y + dy),
                fontsize=6.5,
                ha="center",
                va="center",
                color=colour,
            )
    ax.scatter([], [], color=LIBRARY_COLOUR, label=LIBRARY)
    ax.scatter(
        [], [], color=PLAIN_COLOUR, label=f"{PLAIN} (each scenario's main model, SDK retries)"
    )
    ax.set_xscale("symlog", linthresh=0.1, linscale=0.6)
    ax.set_xlim(-0.03, max(100.0, biggest * 1.5))
    ax.set_xticks([0, 0.1, 0.5, 1, 2, 5, 10, 20, 50, 100])
    ax.set_xticklabels(["0", "0.1", "0.5", "1", "2", "5", "10", "20", "50", "100"], fontsize=8)
    ax.set_yticks(range(len(rows)), [name for name, _ in rows], fontsize=8)
    ax.invert_yaxis()
    ax.grid(True, axis="x", alpha=0.3)
    ax.set_xlabel("calls that ended without an answer (%, symmetric-log axis)")
    ax.set_title("Failed calls: notdiamond against the plain SDK on the same faults", fontsize=10)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, frameon=False)
    fig.tight_layout()
    return _save(fig, out / "success.png")


# -- attempts ------------------------------------------------------------------------------
def plot_timelines(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    """A few calls per scenario, one lane per model they tried, each lane named by its model."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    chosen = [r for r in results if r.plot.get("timeline") and r.scenario in TIMELINE_SCENARIOS]
    if not chosen:
        return None
    per_panel = []
    for r in chosen:
        lines = [t for t in r.plot["timeline"] if len(t["attempts"]) > 1][:8] or r.plot["timeline"][
            :8
        ]
        lanes = []  # (request, model, attempts in that lane, first lane of its request)
        for t in lines:
            models = list(dict.fromkeys(a[0] for a in t["attempts"]))
            for i, m in enumerate(models):
                lanes.append((t, m, [a for a in t["attempts"] if a[0] == m], i == 0))
        per_panel.append((r, lanes))
    heights = [0.9 + 0.22 * len(lanes) for _, lanes in per_panel]
    fig, axes = plt.subplots(
        len(per_panel),
        1,
        figsize=(12, sum(heights) + 0.6),
        squeeze=False,
        gridspec_kw={"height_ratios": heights},
    )
    seen: set[str] = set()
    for ax, (r, lanes) in zip(axes.flat, per_panel, strict=True):
        row = {(t["request"], m): y for y, (t, m, _, _) in enumerate(lanes)}
        labels = []
        for y, (t, m, attempts, first) in enumerate(lanes):
            labels.append(f"call {t['request']}: {m}" if first else m)
            if first and y:
                ax.axhline(y - 0.5, color="#cccccc", linewidth=0.6)
            for _, s, e, outcome in attempts:
                seen.add(outcome)
                ax.barh(
                    y,
                    max(e - s, 0.02),
                    left=s,
                    height=0.62,
                    color=OUTCOME_COLOURS.get(outcome, "k"),
                    edgecolor="black",
                    linewidth=0.3,
                )
        for t in {id(t): t for t, _, _, _ in lanes}.values():
            for (k1, _, e1, _), (k2, s2, _, _) in itertools.pairwise(t["attempts"]):
                y1, y2 = row[(t["request"], k1)], row[(t["request"], k2)]
                ax.plot([e1, s2], [y1, y2], color="#777777", linewidth=0.8, linestyle=":")
        ax.set_yticks(range(len(lanes)), labels, fontsize=7)
        ax.set_ylim(len(lanes) - 0.5, -0.5)
        ax.set_xlim(left=0)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("virtual seconds since the call started", fontsize=7)
        ax.set_title(f"{r.scenario}: attempt timelines", fontsize=9)
    handles = [Patch(color=c, label=k) for k, c in OUTCOME_COLOURS.items() if k in seen]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (sum(heights) + 0.6)))
    return _save(fig, out / "timelines.png")


def plot_waits(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    """Per model, the ECDF of the waits between its attempts against the promised waits
    (scenarios without jitter); then the jitter draws against uniform."""
    by_model: dict[str, list[tuple[float, float]]] = {}
    sources: dict[str, set[str]] = {}
    #: per model and kind of run ("in process", "over real sockets"): the largest deviation
    worst: dict[str, dict[str, float]] = {}
    for r in results:
        s = scenarios.get(r.scenario)
        # the waits the configuration promises are what backoff_waits judges: only its scenarios
        # (a breaker, a deadline or a hedge changes waits on purpose); jittered ones are below
        if s is None or s.jitter or not any(c.name == "backoff_waits" for c in r.checks):
            continue
        for key, pairs in r.plot.get("waits_by_model", {}).items():
            by_model.setdefault(key, []).extend((float(e), float(o)) for e, o, _ in pairs)
            sources.setdefault(key, set()).add(r.scenario)
            where = "over real sockets" if s.mode == "server" else "in process"
            # outside [low, promised]: an HTTP-date Retry-After may end up to 0.5 s early
            dev = max((max(lo - o, o - e, 0.0) for e, o, lo in pairs), default=0.0)
            worst.setdefault(key, {})[where] = max(worst.get(key, {}).get(where, 0.0), dev)
    jittered = [r for r in results if r.plot.get("jitter_draws")]
    models = sorted(k for k, v in by_model.items() if v)
    count = len(models) + (1 if jittered else 0)
    if not count:
        return None
    fig, axes = _grid(count, 3, 15, 3.8)
    for ax, key in zip(axes, models, strict=False):
        pairs = by_model[key]
        xs, ys = _ecdf([o for _, o in pairs])
        ax.step(xs, ys, where="post", color=LIBRARY_COLOUR, linewidth=1.6, label="observed gap")
        xs, ys = _ecdf([e for e, _ in pairs])
        ax.step(
            xs,
            ys,
            where="post",
            color="black",
            linewidth=0.9,
            linestyle="--",
            label="promised: max(backoff ** k, Retry-After)",
        )
        devs = ", ".join(f"{w} {d * 1000:.1f} ms" for w, d in sorted(worst[key].items()))
        _log_seconds(ax)
        ax.set_ylim(0, 1.02)
        ax.set_title(
            f"{key}: {len(pairs):,} retry waits in {len(sources[key])} scenario(s)\n"
            f"largest miss of the promised wait: {devs}",
            fontsize=9,
        )
        ax.set_xlabel("wait before a retry of the same model (s, log axis)", fontsize=8)
        ax.set_ylabel("share of waits at most x", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    if jittered:
        ax = axes[len(models)]
        for r in jittered:
            xs, ys = _ecdf(r.plot["jitter_draws"])
            ax.step(xs, ys, where="post", label=f"{r.scenario} (n={len(xs):,})")
        ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle="--", label="U[0, 1)")
        ks = [c for r in jittered for c in r.checks if c.name == "backoff_waits"]
        note = ", ".join(
            f"KS D={c.statistic:.4f}, p={c.p_value:.3g}" for c in ks if c.p_value is not None
        )
        ax.set_title(f"Jitter draws against uniform\n({note})", fontsize=9)
        ax.set_xlabel("u = (1 - wait / backoff ** k) / jitter", fontsize=8)
        ax.set_ylabel("share of draws at most u", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(
        "Waits between attempts of one model (virtual time; over real sockets: scaled real time)",
        fontsize=11,
    )
    fig.tight_layout()
    return _save(fig, out / "waits.png")


# -- selection and the fake provider -------------------------------------------------------
def plot_weights(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    panels = []
    for r in results:
        for c in r.checks:
            if c.name == "first_choice_weights" and "table" in c.details:
                panels.append(
                    (
                        f"{r.scenario}: first choice [{c.path}, n={c.n:,}]",
                        c.details["table"],
                        c.passed,
                    )
                )
            if c.name == "fallback_weights":
                table = c.details.get("table")
                if table is None:
                    groups = [g for g in c.details.get("groups", []) if g.get("used")]
                    if not groups:
                        continue
                    table = groups[0]["table"]
                    label = f"after {', '.join(groups[0]['failed'])} failed"
                else:
                    label = f"after {', '.join(c.details.get('failed', []))} failed"
                panels.append(
                    (f"{r.scenario}: fallback {label} [{c.path}, n={c.n:,}]", table, c.passed)
                )
    if not panels:
        return None
    fig, axes = _grid(len(panels), 2, 12, 3.0)
    for ax, (title, table, passed) in zip(axes, panels, strict=True):
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
            color=LIBRARY_COLOUR if passed else "#d62728",
            label="observed - expected, 99% CI",
        )
        ax.set_xticks(x, labels, fontsize=7)
        ax.set_xlim(-0.5, len(table) - 0.5)
        span = max([3.0, *(abs(d) + h for d, h in zip(dev, hi, strict=True))])
        ax.set_ylim(-span * 1.15, span * 1.15)
        ax.set_ylabel("points", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=6, loc="upper right")
    fig.suptitle(
        "Model shares: observed minus expected weight, in percentage points (Wilson 99% intervals)",
        fontsize=11,
    )
    fig.tight_layout()
    return _save(fig, out / "weights.png")


def plot_provider_latency(
    out: Path, results: Sequence[JobResult], scenarios: dict[str, Scenario]
) -> str | None:
    """The fake provider's latencies against the fault model: a histogram per model and latency
    distribution."""
    import numpy as np

    # one panel per model and distinct latency model, from the scenario that answered it most
    # (a deadline cuts attempts short of the model's timeout: those scenarios are left out)
    best: dict[tuple[str, str, float], tuple[str, str, Any, Any, float]] = {}
    for r in results:
        s = scenarios.get(r.scenario)
        if s is None or s.mode == "server" or "deadline" in s.config:
            continue
        for key, values in r.plot.get("latencies", {}).items():
            dist = s.providers[key].latency
            if len(values) < 30 or dist.kind == "fixed":
                continue
            slot = (key, dist.describe(), s.timeouts[key])
            if slot not in best or len(values) > len(best[slot][2]):
                best[slot] = (r.scenario, key, values, dist, s.timeouts[key])
    panels = [best[k] for k in sorted(best)][:12]
    if not panels:
        return None
    fig, axes = _grid(len(panels), 3, 13, 2.8)
    for ax, (scen, key, values, dist, timeout) in zip(axes, panels, strict=True):
        arr = np.asarray(values)
        hi = min(max(float(arr.max()), dist.mean() * 2.5), timeout * 1.05)
        grid = np.linspace(1e-6, hi, 300)
        ax.hist(
            arr,
            bins=40,
            range=(0, hi),
            density=True,
            color=LIBRARY_COLOUR,
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
        ax.set_title(f"{key} ({scen}, n={len(arr):,})", fontsize=9)
        ax.set_xlabel("seconds", fontsize=7)
        ax.legend(fontsize=6)
        ax.tick_params(labelsize=7)
    fig.suptitle(
        "The fake provider: latency of answered attempts (virtual seconds) against the fault "
        "model's distribution",
        fontsize=10,
    )
    fig.tight_layout()
    return _save(fig, out / "provider_latency.png")


#: The plots, in the order summary.md shows them.
PLOTS: tuple[Callable[[Path, Sequence[JobResult], dict[str, Scenario]], str | None], ...] = (
    plot_outcomes,
    plot_success,
    plot_timelines,
    plot_waits,
    plot_weights,
    plot_provider_latency,
)
