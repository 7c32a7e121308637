"""``comparison.png``: every contender by its name, on axes where the differences that matter show.

One row of panels per scenario, one line per contender (its full name on the y axis), three
panels: calls without an answer (a symmetric-log axis, so 0%, 0.4% and 30% are all apart), time
to outcome (p50 to p99, a log axis) and HTTP requests per call. A contender a scenario did not
run says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Contender families, by the start of their names: (prefix, colour).
FAMILIES = (
    ("notdiamond 0.4", "#9ecae1"),
    ("notdiamond", "#1f77b4"),
    ("openai SDK", "#ff7f0e"),
    ("tenacity", "#8c564b"),
    ("LiteLLM", "#2ca02c"),
)
OTHER_COLOUR = "#7f7f7f"
FAILED_TICKS = (0, 0.1, 0.5, 1, 2, 5, 10, 20, 50, 100)


def colour_of(contender: str) -> str:
    for prefix, colour in FAMILIES:
        if contender.startswith(prefix):
            return colour
    return OTHER_COLOUR


def comparison_figure(results: Mapping[str, Any]) -> Any:
    """The figure (matplotlib ``Figure``) for ``results["scenarios"]``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    scenarios: Mapping[str, Any] = results["scenarios"]
    contenders = list(dict.fromkeys(c for s in scenarios.values() for c in s["contenders"]))
    rows = len(scenarios)
    height = 0.24 * len(contenders) + 0.9
    fig, axes = plt.subplots(rows, 3, figsize=(19, height * rows + 0.8), squeeze=False, sharey=True)
    y = list(range(len(contenders)))
    latencies = [
        float(v[k])
        for s in scenarios.values()
        for v in s["contenders"].values()
        for k in ("latency_p50_s", "latency_p99_s")
        if v.get(k) is not None and float(v[k]) > 0
    ]
    lat_range = (min(latencies, default=0.1) / 1.5, max(latencies, default=10.0) * 1.5)
    amp_max = max(
        (
            float(v["amplification_mean"])
            for s in scenarios.values()
            for v in s["contenders"].values()
        ),
        default=2.0,
    )
    for row, (name, scenario) in enumerate(scenarios.items()):
        failed_ax, latency_ax, amp_ax = axes[row]
        title = scenario.get("title", "")
        failed_ax.set_title(f"{name}: calls without an answer", fontsize=10, loc="left")
        latency_ax.set_title(
            f"{name}: time to outcome, p50 (o) to p99 (●)", fontsize=10, loc="left"
        )
        amp_ax.set_title(f"{name}: HTTP requests per call", fontsize=10, loc="left")
        if title:
            amp_ax.text(
                1.0,
                1.12,
                title,
                transform=amp_ax.transAxes,
                ha="right",
                fontsize=8,
                color="#555555",
            )
        for i, contender in enumerate(contenders):
            stats = scenario["contenders"].get(contender)
            colour = colour_of(contender)
            if stats is None:
                for ax in (failed_ax, latency_ax, amp_ax):
                    ax.text(
                        0.01,
                        i,
                        "not run",
                        transform=ax.get_yaxis_transform(),
                        va="center",
                        fontsize=7,
                        color="#999999",
                    )
                continue
            failed = 100 * (1 - float(stats["success_rate"]))
            failed_ax.plot([0, failed], [i, i], color="#dddddd", linewidth=1, zorder=1)
            failed_ax.scatter([failed], [i], color=colour, s=28, zorder=2)
            failed_ax.annotate(
                f"{failed:.2f}%" if failed else "0",
                (failed, i),
                xytext=(5, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
            p50, p99 = float(stats["latency_p50_s"]), float(stats["latency_p99_s"])
            latency_ax.plot([p50, p99], [i, i], color=colour, linewidth=2, zorder=1)
            latency_ax.scatter([p50], [i], facecolors="white", edgecolors=colour, s=26, zorder=2)
            latency_ax.scatter([p99], [i], color=colour, s=26, zorder=2)
            latency_ax.annotate(
                f"{p99:.2f} s",
                (p99, i),
                xytext=(5, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
            amp = float(stats["amplification_mean"])
            amp_ax.plot([1, amp], [i, i], color="#dddddd", linewidth=1, zorder=1)
            amp_ax.scatter([amp], [i], color=colour, s=28, zorder=2)
            amp_ax.annotate(
                f"{amp:.2f}",
                (amp, i),
                xytext=(5, 0),
                textcoords="offset points",
                va="center",
                fontsize=7,
            )
        failed_ax.set_xscale("symlog", linthresh=0.1, linscale=0.6)
        failed_ax.set_xlim(-0.03, 100 * 1.6)
        failed_ax.set_xticks(FAILED_TICKS, [f"{t:g}" for t in FAILED_TICKS], fontsize=7)
        failed_ax.set_xlabel("% of calls (symmetric-log axis)", fontsize=8)
        latency_ax.set_xscale("log")
        latency_ax.set_xlim(*lat_range)
        latency_ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        latency_ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        latency_ax.xaxis.set_minor_formatter(NullFormatter())
        latency_ax.tick_params(axis="x", labelsize=7)
        latency_ax.set_xlabel(
            "seconds (log axis; virtual, or real where the name says so)", fontsize=8
        )
        amp_ax.set_xlim(0.95, max(2.0, math.ceil(amp_max * 1.15 * 2) / 2))
        amp_ax.tick_params(axis="x", labelsize=7)
        amp_ax.set_xlabel("HTTP requests / call (1 = no retry)", fontsize=8)
        for ax in (failed_ax, latency_ax, amp_ax):
            ax.grid(axis="x", alpha=0.3)
            ax.set_ylim(len(contenders) - 0.5, -0.5)
        failed_ax.set_yticks(y, contenders, fontsize=8)
    fig.suptitle(
        "Same faults, same seeds: each contender by name (fewer failed calls, shorter times, "
        "fewer requests are better)",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (height * rows + 0.8)))
    return fig


def write_plot(results: Mapping[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = comparison_figure(results)
    fig.savefig(path, dpi=90)
    plt.close(fig)
