"""``--traces DIR``: one JSON line per attempt, what the provider saw joined with what the runtime
reported."""

from __future__ import annotations

import json
from pathlib import Path

from .trace import Trace


def write_trace(path: Path, trace: Trace) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    reported = trace.attempts_by_request()
    with path.open("w", encoding="utf-8") as f:
        for request, recs in sorted(trace.http_by_request().items()):
            atts = reported.get(request, [])
            previous_end = None
            for i, rec in enumerate(recs):
                att = atts[i] if i < len(atts) else None
                f.write(
                    json.dumps(
                        {
                            "request": request,
                            "t": round(rec.start, 6),
                            "t_end": round(rec.end, 6),
                            "model": rec.key,
                            "provider": rec.provider,
                            "attempt": att.attempt if att else None,
                            "outcome": rec.outcome,
                            "source": rec.source,
                            "retry_after": rec.retry_after,
                            "wait_before": None
                            if previous_end is None
                            else round(rec.start - previous_end, 6),
                            "runtime_wait_before": att.wait_before if att else None,
                            "decision": att.decision if att else None,
                            "sent_model": rec.body_model,
                            "sent_timeout": rec.timeout,
                        }
                    )
                    + "\n"
                )
                previous_end = rec.end


def trace_path(directory: str, label: str) -> Path:
    return Path(directory) / f"{label.replace(' ', '_').replace(':', '')}.jsonl"
