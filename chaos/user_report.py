"""The report of an ``--init`` run: ``summary.md`` (for a person), ``results.json`` (for a machine)
and ``time-to-outcome.png``.

``summary.md`` opens with the configuration the harness captured, then one table row per scenario
(success rate, p50/p99 time to outcome, HTTP requests and waiting per call, the checks), the
findings, and each scenario's checks.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .baseline import Call
from .user_config import Captured

if TYPE_CHECKING:
    from .user_run import UserResult

PLOT_FILE = "time-to-outcome.png"


def _num(x: float, fmt: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def glance_table(results: Sequence[UserResult]) -> list[str]:
    """One row per scenario: what the configuration did to the calls, and the checks' verdict."""
    lines = [
        "| scenario | calls | success | p50 | p99 | HTTP requests / call | waiting / call "
        "| plain SDK: success | plain SDK: p99 | checks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if r.job.error:
            lines.append(f"| {r.name} | {r.job.n} | | | | | | | | crashed |")
            continue
        f = r.figures
        checks = r.job.checks
        judged = [c for c in checks if c.verdict != "not exercised"]
        failed = r.failed_checks
        verdict = "FAILED: " + ", ".join(failed) if failed else f"{len(judged)} passed"
        unexercised = [c.name for c in checks if c.verdict == "not exercised"]
        if unexercised:
            verdict += f"; {len(unexercised)} with nothing to judge ({', '.join(unexercised)})"
        lines.append(
            f"| {r.name} | {int(f['calls'])} | {_num(100 * f['success'], '.2f')}% | "
            f"{_num(f['p50_s'], '.2f')} s | {_num(f['p99_s'], '.2f')} s | "
            f"{_num(f['http_per_call'], '.2f')} | {_num(f['wait_per_call_s'], '.2f')} s | "
            f"{_plain_success(r)} | {_plain_p99(r)} | {verdict} |"
        )
    return lines


def _plain_figures(r: UserResult) -> dict[str, float] | None:
    """The plain SDK's calls on the same faults, and the library's over the same calls."""
    if not r.plain:
        return None
    import numpy as np

    return {
        "calls": len(r.plain),
        "success": sum(c.ok for c in r.plain) / len(r.plain),
        "p99_s": float(np.percentile([c.seconds for c in r.plain], 99)),
        "notdiamond_success": sum(c.ok for c in r.library) / max(1, len(r.library)),
    }


def _plain_success(r: UserResult) -> str:
    figures = _plain_figures(r)
    return "n/a" if figures is None else f"{100 * figures['success']:.2f}%"


def _plain_p99(r: UserResult) -> str:
    figures = _plain_figures(r)
    return "n/a" if figures is None else f"{figures['p99_s']:.2f} s"


def _configuration(captured: Captured) -> list[str]:
    lines = ["## Your configuration", ""]
    lines.append(
        "Clients: " + "; ".join(c.describe() for c in captured.clients) + " (never contacted: "
        "the run sends every request to in-process fake providers)."
    )
    lines += ["", "`notdiamond.init` options, as your setup passed them:", ""]
    for name, value in captured.public_config().items():
        lines.append(f"- `{name}`: `{json.dumps(value, default=str)}`")
    if captured.replaced:
        lines += ["", "Replaced for the run:", ""]
        lines += [f"- `{name}`: {why}" for name, why in captured.replaced.items()]
    return lines


def summary_lines(
    captured: Captured, results: Sequence[UserResult], info: dict[str, Any], plot: str | None
) -> list[str]:
    lines = [
        f"# Chaos report: `{captured.target}`",
        "",
        f"`{info['command']}` — seed {info['seed']} ({info['mode']}), "
        f"{'quick' if info['quick'] else 'full'} sizes, {info['wall_s']} s. Times are simulated "
        "seconds (virtual time): a call's time to outcome runs from its first request to its "
        "answer or error.",
        "",
        *_configuration(captured),
        "",
        "## At a glance",
        "",
        *glance_table(results),
        "",
        "Plain SDK: the same faults met without notdiamond, by one client of your main model (the "
        "first, or the heaviest weight) with the SDK's own retries and that model's timeout, over "
        "the first calls of each scenario (at most 1,000); `n/a` when run with `--no-plots`. A "
        "call that fails at once is quick: read its p99 with its success rate.",
        "",
        "## Findings",
        "",
        "Advice from measured figures against fixed thresholds (chaos/README.md); it never changes "
        "the exit status, which is the checks'.",
        "",
    ]
    for r in results:
        for f in r.findings:
            lines.append(f"- **{r.name}** ({f.level}): {f.text}")
    if plot:
        lines += ["", f"![time to outcome per scenario]({plot})"]
    lines += ["", "## Scenarios and checks", ""]
    for r in results:
        s = r.user.scenario
        lines += [f"### {r.name}", "", s.description, ""]
        if r.job.error:
            lines += ["```", r.job.error.rstrip(), "```", ""]
            continue
        lines += ["| check | verdict | summary |", "|---|---|---|"]
        for c in r.job.checks:
            summary = c.summary.replace("|", "\\|")
            lines.append(f"| {c.name} ({c.path}) | {c.verdict} | {summary} |")
        lines.append("")
    return lines


def _plain(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_plain(v) for v in o]
    return o


def results_data(
    captured: Captured, results: Sequence[UserResult], info: dict[str, Any]
) -> dict[str, Any]:
    return {
        "run": info,
        "clients": [c.__dict__ for c in captured.clients],
        "configuration": captured.public_config(),
        "replaced": captured.replaced,
        "scenarios": [
            {
                "name": r.name,
                "kind": r.user.kind,
                "model": r.user.model,
                "description": r.user.scenario.description,
                "n": r.job.n,
                "seed": r.job.seed,
                "figures": r.figures,
                "plain_sdk": _plain_figures(r),
                "measures": r.measures,
                "findings": [f.as_json() for f in r.findings],
                "checks": [c.as_json() for c in r.job.checks],
                "error": r.job.error,
            }
            for r in results
        ],
    }


def plot_durations(out: Path, results: Sequence[UserResult]) -> str | None:
    """What each fault did to your calls: one panel per scenario, the share of calls still without
    an answer t seconds after they started, notdiamond against the plain SDK on the same faults
    (log axes: where a line levels off is the share that never got an answer)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    drawn = [r for r in results if r.library or r.durations]
    if not drawn:
        return None
    cols = min(3, len(drawn))
    rows = -(-len(drawn) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, r in zip(axes.flat, drawn, strict=False):
        series = (
            [("notdiamond", r.library, "tab:blue"), ("plain SDK", r.plain, "tab:orange")]
            if r.library
            else [("notdiamond", [Call(d, True) for d in r.durations], "tab:blue")]
        )
        for label, calls, color in series:
            if not calls:
                continue
            n = len(calls)
            answered = np.sort([max(c.seconds, 0.05) for c in calls if c.ok])
            t = np.concatenate([[0.05], answered])
            waiting = 1.0 - np.arange(len(t)) / n  # share without an answer just after t
            ax.step(t, np.maximum(100 * waiting, 0.05), where="post", label=label, color=color)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(0.05, 110)
        ax.set_title(r.name, fontsize=9)
        ax.set_xlabel("seconds since the call started", fontsize=8)
        ax.set_ylabel("% of calls without an answer", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    for ax in list(axes.flat)[len(drawn) :]:
        ax.axis("off")
    fig.suptitle("What each fault did to your calls: notdiamond against the plain SDK")
    fig.tight_layout()
    fig.savefig(out / PLOT_FILE, dpi=110)
    plt.close(fig)
    return PLOT_FILE


def write_report(
    out: Path,
    captured: Captured,
    results: Sequence[UserResult],
    info: dict[str, Any],
    *,
    plots: bool,
) -> dict[str, Any]:
    """Write ``summary.md``, ``results.json`` and (with ``plots``) the plot; return the JSON data."""
    plot = plot_durations(out, results) if plots else None
    data = results_data(captured, results, info)
    (out / "results.json").write_text(
        json.dumps(_plain(data), indent=2, default=str, allow_nan=False) + "\n", encoding="utf-8"
    )
    (out / "summary.md").write_text(
        "\n".join(summary_lines(captured, results, info, plot)) + "\n", encoding="utf-8"
    )
    return data
