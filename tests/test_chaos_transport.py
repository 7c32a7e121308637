"""The in-process fake provider behind the real SDK: fault mapping, virtual time, Retry-After."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import openai
import pytest

import notdiamond
from chaos.clock import VirtualClock, VirtualTimeLoop, run_virtual
from chaos.faults import FaultSampler, ProviderFaults
from chaos.trace import REQUEST_HEADER, Trace, current_request
from chaos.transport import FakeProvider, make_clients, make_transports, sdk_http_module

MESSAGES = [{"role": "user", "content": "hi"}]


class SyncEnv:
    def __init__(self, faults: dict[str, dict[str, Any]], models: Any, **config: Any) -> None:
        http = sdk_http_module()
        transport_cls, _ = make_transports(http)
        self.clock = VirtualClock()
        self.trace = Trace()
        parsed = {k: ProviderFaults.parse(k, v) for k, v in faults.items()}
        fake = FakeProvider(parsed, 3, self.trace, self.clock.time)
        providers = {k.split("/")[0] for k in faults}
        self.clients = make_clients(
            providers,
            is_async=False,
            transport_for=lambda p: transport_cls(fake, p, self.clock.advance),
            http=http,
        )
        self.manager = notdiamond.init(
            self.clients,
            models,
            seed=1,
            clock=self.clock.time,
            sleep=self.clock.sleep,
            observer=self.trace.observer,
            **config,
        )

    def client(self, provider: str) -> Any:
        return next(
            c for c in self.clients if ("Azure" in type(c).__name__) == (provider == "azure")
        )

    def call(self, provider: str = "openai", request: int = 0, **kw: Any) -> Any:
        current_request.set(request)
        kw.setdefault("model", "notdiamond")
        return self.client(provider).chat.completions.create(
            messages=MESSAGES, extra_headers={REQUEST_HEADER: str(request)}, **kw
        )

    def gaps(self) -> list[float]:
        recs = self.trace.http
        return [b.start - a.end for a, b in itertools.pairwise(recs)]


def test_429_with_retry_after_ms_is_a_rate_limit_error_and_the_wait_honours_it() -> None:
    env = SyncEnv(
        {
            "openai/gpt-4o": {
                "errors": {"429": 1.0},
                "retry_after": {"header": "retry-after-ms", "kind": "fixed", "value": 2.5},
            }
        },
        ["openai/gpt-4o"],
        max_retries=3,
        backoff=2.0,
    )
    with pytest.raises(openai.RateLimitError) as info:
        env.call()
    assert info.value.response.headers["retry-after-ms"] == "2500"
    # waits: max(2**1, 2.5) = 2.5, then max(2**2, 2.5) = 4, to the millisecond of virtual time
    assert [round(g, 6) for g in env.gaps()] == [2.5, 4.0]
    assert [a.decision for a in env.trace.attempts] == ["retry", "retry", "raise"]


def test_retry_after_in_whole_seconds_and_the_cap() -> None:
    env = SyncEnv(
        {
            "openai/gpt-4o": {
                "errors": {"429": 1.0},
                "retry_after": {"header": "retry-after", "kind": "fixed", "value": 2.2},
            },
            "azure/gpt-4o": {},
        },
        ["openai/gpt-4o", "azure/gpt-4o"],
        max_retries=2,
        backoff=1.0,
        retry_after_cap=2.5,
    )
    env.call()  # Retry-After: 3 > cap 2.5: straight to azure, no wait
    assert [(r.key, r.outcome, r.retry_after) for r in env.trace.http] == [
        ("openai/gpt-4o", "429", 3.0),
        ("azure/gpt-4o", "ok", None),
    ]
    assert env.gaps() == [0.0]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("500", openai.InternalServerError),
        ("502", openai.InternalServerError),
        ("503", openai.InternalServerError),
        ("408", openai.APIStatusError),
        ("400", openai.BadRequestError),
        ("401", openai.AuthenticationError),
        ("403", openai.PermissionDeniedError),
        ("404", openai.NotFoundError),
        ("409", openai.ConflictError),
        ("422", openai.UnprocessableEntityError),
        ("reset", openai.APIConnectionError),
        ("read_timeout", openai.APITimeoutError),
    ],
)
def test_faults_reach_the_runtime_as_the_sdk_errors(fault: str, error: type[Exception]) -> None:
    env = SyncEnv(
        {"azure/gpt-4o": {"errors": {fault: 1.0}}}, ["azure/gpt-4o"], max_retries=2, timeout=7
    )
    with pytest.raises(error):
        env.call("azure")
    attempts = 1 if fault in ("400", "401", "403", "404", "422") else 2
    assert len(env.trace.http) == attempts == len(env.trace.attempts)
    if fault == "read_timeout":
        assert env.trace.http[0].end - env.trace.http[0].start == 7.0


def test_retry_after_on_503_as_an_http_date() -> None:
    """An HTTP-date Retry-After asks for ``date - now`` of wall time, whole seconds of date: the
    runtime waits that long in virtual time (less the real time its decision took)."""
    env = SyncEnv(
        {
            "openai/gpt-4o": {
                "errors": {"503": 1.0},
                "retry_after": {"header": "http-date", "on": ["503"], "kind": "fixed", "value": 6},
            }
        },
        ["openai/gpt-4o"],
        max_retries=2,
        backoff=1.0,
    )
    with pytest.raises(openai.InternalServerError) as info:
        env.call()
    assert info.value.response.headers["retry-after"].endswith(" GMT")
    first = env.trace.http[0]
    assert first.retry_after is not None
    assert 6.0 <= first.retry_after < 7.0
    (gap,) = env.gaps()
    assert first.retry_after - 0.5 <= gap <= first.retry_after + 1e-9


def test_every_attempt_records_what_it_sent() -> None:
    env = SyncEnv(
        {"openai/gpt-4o": {"errors": {"500": 1.0}}, "azure/gpt-4o": {}},
        ["openai/gpt-4o", "azure/gpt-4o"],
        max_retries={"openai/gpt-4o": 2},
        timeout={"openai/gpt-4o": 4, "azure/gpt-4o": 9},
        model_messages={"azure/gpt-4o": [{"role": "system", "content": "s"}]},
    )
    env.call()
    sent = [(r.key, r.body_model, r.timeout, r.messages) for r in env.trace.http]
    assert sent == [
        ("openai/gpt-4o", "gpt-4o", 4.0, '[{"content":"hi","role":"user"}]'),
        ("openai/gpt-4o", "gpt-4o", 4.0, '[{"content":"hi","role":"user"}]'),
        (
            "azure/gpt-4o",
            "gpt-4o",
            9.0,
            '[{"content":"s","role":"system"},{"content":"hi","role":"user"}]',
        ),
    ]


def test_latency_beyond_the_timeout_is_a_read_timeout_at_the_timeout() -> None:
    env = SyncEnv({"openai/gpt-4o": {"latency": 12.0}}, ["openai/gpt-4o"], timeout=3)
    before = time.perf_counter()
    with pytest.raises(openai.APITimeoutError):
        env.call()
    assert env.clock.now == 3.0  # virtual
    assert time.perf_counter() - before < 2  # not real


def test_azure_paths_and_streams_cut_after_k_chunks() -> None:
    env = SyncEnv(
        {"azure/my-deployment": {"stream_cut": {"probability": 1.0, "after_chunks": 2}}},
        ["azure/my-deployment"],
    )
    stream = env.call("azure", stream=True)
    got = []

    def read_all() -> None:
        for chunk in stream:
            got.append(chunk.choices[0].delta.content)

    # openai 3 maps the broken stream to APIConnectionError; openai 2 lets httpx's error through
    with pytest.raises((openai.APIConnectionError, sdk_http_module().RemoteProtocolError)):
        read_all()
    assert got == ["t0", "t1"]
    assert env.trace.http[0].key == "azure/my-deployment"
    assert env.trace.http[0].source == "cut"


def test_a_complete_stream_and_a_parsed_completion() -> None:
    env = SyncEnv(
        {"openai/gpt-4o": {"latency": {"kind": "uniform", "low": 0.1, "high": 0.2}}},
        ["openai/gpt-4o"],
    )
    text = "".join(c.choices[0].delta.content or "" for c in env.call(stream=True))
    assert text == "t0t1t2t3"
    done = env.call(request=1)
    assert done.choices[0].message.content == "ok"
    assert done.model == "gpt-4o"
    assert 0.2 <= env.clock.now <= 0.4


def test_token_bucket_answers_429_with_the_true_time_to_the_next_token() -> None:
    faults = ProviderFaults.parse("openai/m", {"rate_limit": {"rate": 2.0, "burst": 1}})
    sampler = FaultSampler(faults, 1)
    assert sampler.draw(0.0, 10, False).kind == "ok"
    limited = sampler.draw(0.1, 10, False)
    assert limited.kind == "429"
    assert limited.retry_after == ("retry-after-ms", "400", 0.4)
    assert sampler.draw(0.5, 10, False).kind == "ok"


def test_outage_window_in_simulated_time() -> None:
    faults = ProviderFaults.parse(
        "openai/m", {"outages": [{"start": 10, "end": 20, "status": "502"}]}
    )
    sampler = FaultSampler(faults, 1)
    assert [sampler.draw(t, 10, False).kind for t in (9.9, 10, 19.99, 20)] == [
        "ok",
        "502",
        "502",
        "ok",
    ]


def test_virtual_time_loop_skips_idle_time() -> None:
    async def sleepers() -> list[float]:
        loop = asyncio.get_running_loop()
        seen: list[float] = []

        async def one(d: float) -> None:
            await asyncio.sleep(d)
            seen.append(loop.time())

        await asyncio.gather(*(one(d) for d in (3600.0, 1.5, 60.0)))
        return seen

    before = time.perf_counter()
    seen, loop = run_virtual(sleepers())
    assert seen == [1.5, 60.0, 3600.0]
    assert isinstance(loop, VirtualTimeLoop)
    assert time.perf_counter() - before < 1


def test_async_clients_on_virtual_time() -> None:
    http = sdk_http_module()
    _, transport_cls = make_transports(http)
    trace = Trace()

    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        faults = {
            "openai/a": ProviderFaults.parse("openai/a", {"latency": 1.0, "errors": {"500": 1.0}}),
            "openai/b": ProviderFaults.parse("openai/b", {"latency": 2.0}),
        }
        fake = FakeProvider(faults, 1, trace, loop.time)
        clients = make_clients(
            {"openai"}, is_async=True, transport_for=lambda p: transport_cls(fake, p), http=http
        )
        notdiamond.init(
            clients,
            ["openai/a", "openai/b"],
            max_retries=3,
            backoff=2.0,
            clock=loop.time,
            sleep=asyncio.sleep,
            observer=trace.observer,
        )

        async def one(i: int) -> str:
            current_request.set(i)
            r = await clients[0].chat.completions.create(
                model="notdiamond", messages=MESSAGES, extra_headers={REQUEST_HEADER: str(i)}
            )
            return str(r.model)

        return list(await asyncio.gather(*(one(i) for i in range(50))))

    models, loop = run_virtual(scenario())
    assert models == ["b"] * 50
    # a: 1 s, wait 2, 1 s, wait 4, 1 s -> b: 2 s  = 11 s of virtual time, all 50 concurrently
    assert loop.time() == pytest.approx(11.0)
    assert len(trace.http) == 200 == len(trace.attempts)
