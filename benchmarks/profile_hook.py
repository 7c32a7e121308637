"""Where the library's success-path time goes: a deterministic profile of the request hook.

The same setup as the ``hook`` benchmark (SDK ``request`` stubbed, ``model="notdiamond"``), run under
``cProfile``. cProfile inflates every Python call, so only the shares are meaningful: the report
spreads the measured hook overhead over the functions by their share of own time.
"""

from __future__ import annotations

import cProfile
import pstats
from pathlib import Path
from typing import Any, Final

import openai
from openai._models import FinalRequestOptions
from openai.types.chat import ChatCompletion

import notdiamond
from benchmarks import fake_provider

CALLS: Final = 20_000
LIBRARY_DIR: Final = Path(notdiamond.__file__).resolve().parent


class _StubbedOpenAI(openai.OpenAI):
    def request(
        self, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None
    ) -> Any:
        return None


def where_time_goes(calls: int = CALLS) -> list[dict[str, Any]]:
    """Functions of the success path by share of own time (``share`` sums to 1 over all rows)."""
    client = _StubbedOpenAI(api_key=fake_provider.API_KEY)
    options = [
        FinalRequestOptions.construct(
            method="post",
            url="/chat/completions",
            json_data={"model": "notdiamond", "messages": fake_provider.MESSAGES},
        )
        for _ in range(calls)
    ]
    with notdiamond.init(client, models=["openai/gpt-4o"]):
        for each in options[:100]:  # warm up
            client.request(ChatCompletion, each)
        profiler = cProfile.Profile()
        profiler.enable()
        for each in options[100:]:
            client.request(ChatCompletion, each)
        profiler.disable()
    stats: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, _cum, _callers) in stats.items():
        path = Path(filename)
        where = (
            f"notdiamond/{path.name}:{line} {name}"
            if path.parent == LIBRARY_DIR
            else ("(SDK stub)" if "profile_hook" in filename else f"{path.name}:{line} {name}")
        )
        if filename == "~":  # builtins: dict.update, set.update, ...
            where = name
        rows.append({"function": where, "calls": ncalls, "tottime": tottime})
    total = sum(r["tottime"] for r in rows) or 1.0
    for r in rows:
        r["share"] = r.pop("tottime") / total
    rows.sort(key=lambda r: r["share"], reverse=True)
    return [r for r in rows if r["calls"] >= calls // 2]
