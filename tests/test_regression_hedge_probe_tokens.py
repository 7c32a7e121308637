"""Two lanes of one hedged call each probing a half-open model: the breaker keeps one probe
token per call id (CircuitBreakerStrategy._probes), so the second overwrites the first and the
first model's lease is never released (it stays half-open, probe 'in flight', for 300 s)."""

import asyncio
import sys

import openai
import pytest

import notdiamond
from tests.fakes import USER, status

sys.path.insert(0, "/work/main")
from tests.test_hedging import TWO, SlowProvider


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_both_lanes_probe_tokens_are_kept() -> None:
    slow = SlowProvider()
    client = slow.async_openai()
    manager = notdiamond.init(
        [client, slow.async_azure()],
        models=TWO,
        clock=asyncio.get_running_loop().time,
        hedge=notdiamond.Hedge(delay=2.0),
        circuit_breaker=notdiamond.CircuitBreaker(consecutive_failures=1, break_duration=1.0),
    )
    try:
        slow.script("openai/gpt-4o", status(503))
        slow.script("azure/gpt-4o", status(503))
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="notdiamond", messages=USER)
        assert {m.state for m in manager.health().values()} == {"open"}
        await asyncio.sleep(5.0)  # both half-open now
        slow.latency("openai/gpt-4o", 10.0)  # lane 1 probes openai (slow), lane 2 probes azure
        slow.latency("azure/gpt-4o", 1.0)
        await client.chat.completions.create(model="notdiamond", messages=USER)
        assert manager.health()["azure/gpt-4o"].state == "closed"
        # The call is over: the openai probe was cancelled, so its lease must be free.
        assert not manager.health()["openai/gpt-4o"].breaker.probe_in_flight
    finally:
        manager.close()
