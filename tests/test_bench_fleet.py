"""benchmarks/fleet.py: its fleet sizes and its report section (the runs themselves are the chaos
harness's fleet runner, exercised by the fleet scenarios in tests/test_chaos_suite.py)."""

from __future__ import annotations

from benchmarks import fleet


def test_fleet_sizes_and_the_fleet_rate() -> None:
    assert fleet.PROCESSES == {"full": (1, 4, 16), "quick": (1, 4)}
    assert fleet._scenario(4).traffic.interval == 0.04  # the scenario's own
    assert fleet._scenario(16).traffic.interval == 0.16  # 100 calls/s in all
    assert fleet._scenario(16).fleet.processes == 16


def test_summary_lines_show_shared_and_per_process_side_by_side() -> None:
    row = {
        "processes": 4,
        "calls": 480,
        "success": 1.0,
        "dead_primary_requests": 20,
        "shared_bound": 34,
        "separate_bound": 100,
        "wall_s": 9.5,
    }
    section = {
        "rows": [
            {**row, "state": "shared (RedisState)"},
            {**row, "state": "per process", "dead_primary_requests": 61},
        ],
        "wall_seconds": 30.0,
    }
    text = "\n".join(fleet.summary_lines(section))
    assert "| 4 | shared (RedisState) | 480 | 100.0% | **20** | 34 | 100 | 9.5 |" in text
    assert "| 4 | per process | 480 | 100.0% | **61** | 34 | 100 | 9.5 |" in text
    assert fleet.summary_lines(None) == []
