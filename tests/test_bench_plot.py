"""comparison.png: contenders by name, and an axis on which 99.6% and 100% are apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")

from benchmarks.comparison_plot import comparison_figure, write_plot


def _stats(success: float, p50: float, p99: float, amp: float) -> dict[str, float]:
    return {
        "success_rate": success,
        "latency_p50_s": p50,
        "latency_p99_s": p99,
        "amplification_mean": amp,
    }


RESULTS: dict[str, Any] = {
    "scenarios": {
        "outage": {
            "title": "Outage of the primary",
            "contenders": {
                "openai SDK (built-in retries)": _stats(0.996, 0.6, 1.6, 1.6),
                "notdiamond 0.5.0 (this)": _stats(1.0, 0.6, 7.0, 1.9),
            },
        },
        "stream_slow": {
            "title": "Slow first chunks",
            "contenders": {
                "notdiamond 0.5.0 (this)": _stats(1.0, 0.6, 2.9, 1.25),
                "LiteLLM 1.110.2 Router (default cooldowns), real time": _stats(
                    1.0, 0.6, 23.0, 1.3
                ),
            },
        },
    }
}


def test_every_contender_is_named_and_small_failure_shares_stand_apart(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    fig = comparison_figure(RESULTS)
    names = [
        "openai SDK (built-in retries)",
        "notdiamond 0.5.0 (this)",
        "LiteLLM 1.110.2 Router (default cooldowns), real time",
    ]
    failed_ax = fig.axes[0]
    assert [t.get_text() for t in failed_ax.get_yticklabels()] == names
    assert failed_ax.get_xscale() == "symlog"
    # 99.6% and 100%: 0.4% and 0 of calls without an answer, far apart on the axis
    to_pixels = failed_ax.transData.transform
    gap = abs(to_pixels((0.4, 0))[0] - to_pixels((0.0, 0))[0])
    width = failed_ax.get_window_extent().width
    assert gap > 0.25 * width
    labels = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"0.40%", "0", "not run", "23.00 s"} <= labels
    assert not [t for t in labels if t.strip().isdigit() and t != "0"]  # no contender numbers
    plt.close(fig)
    write_plot(RESULTS, tmp_path / "comparison.png")
    assert (tmp_path / "comparison.png").stat().st_size > 10_000
