"""Memory and time of reading one long streamed answer, plain SDK against this library.

A streamed attempt succeeds at its first chunk (SPEC 4.9): the library reads the response up to
its first event inside the attempt and hands the caller the SDK's own stream, which yields that
event and then the rest as it arrives. Nothing beyond the first event may be held, so the peak
memory of reading a long stream must stay that of the plain SDK reading the same stream. Measured here with ``tracemalloc``
(Python allocations) while the caller reads every chunk of an answer of ``LONG_CHUNKS`` events of
about 1 KB each, streamed from a generator body (the fake holds one event at a time), and timed
by pytest-benchmark per whole stream.
"""

from __future__ import annotations

import json
import os
import tracemalloc
from collections.abc import Iterator
from typing import Any, Final

import pytest

import notdiamond
from benchmarks import fake_provider
from benchmarks.fake_provider import MESSAGES, http

#: Events in the long answer (``BENCH_STREAM_CHUNKS``); about 1 KB each.
LONG_CHUNKS: Final = int(os.environ.get("BENCH_STREAM_CHUNKS", "4000"))
TEXT: Final = "x" * 1000
EVENT: Final = (
    "data: "
    + json.dumps(
        {
            "id": "chatcmpl-long",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"content": TEXT}, "finish_reason": None}],
        }
    )
    + "\n\n"
).encode()


class LongBody(http.SyncByteStream):
    """A streamed body generated one event at a time (so the fake itself holds almost nothing)."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(self.chunks):
            yield EVENT
        yield b"data: [DONE]\n\n"


def _long_stream(request: Any) -> Any:
    return http.Response(
        200, stream=LongBody(LONG_CHUNKS), headers={"content-type": "text/event-stream"}
    )


def _read_all(client: Any, model: str) -> int:
    stream = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
    return sum(1 for _ in stream)


def _peak_bytes(client: Any, model: str) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        assert _read_all(client, model) == LONG_CHUNKS
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak


@pytest.mark.benchmark(group="long stream")
@pytest.mark.parametrize("variant", ["plain SDK", "notdiamond"])
def test_long_stream(benchmark: Any, variant: str) -> None:
    client = fake_provider.openai_client(_long_stream)
    manager = notdiamond.init(client, models=["openai/gpt-4o"]) if variant == "notdiamond" else None
    model = "notdiamond" if manager is not None else "gpt-4o"
    try:
        peak = _peak_bytes(client, model)
        benchmark.extra_info.update(
            kind="memory",
            name=f"{variant}: read a {LONG_CHUNKS}-chunk stream (~{LONG_CHUNKS} KB)",
            peak_kib=peak / 1024,
            stream_kib=LONG_CHUNKS * len(EVENT) / 1024,
        )
        result = benchmark.pedantic(_read_all, args=(client, model), rounds=5, warmup_rounds=1)
        assert result == LONG_CHUNKS
        if manager is not None:
            # Priming holds one event: the peak stays that of the plain SDK reading the same
            # stream (the HTTP library of openai 2.x's mock transport buffers the body itself).
            plain = _peak_bytes(fake_provider.openai_client(_long_stream), "gpt-4o")
            assert peak <= plain + 256 * 1024, (peak, plain)
    finally:
        if manager is not None:
            manager.close()
