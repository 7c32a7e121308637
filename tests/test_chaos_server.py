"""The loopback fake server: real sockets on 127.0.0.1, SSE, faults, and it stops by itself."""

from __future__ import annotations

import time

import openai
import pytest

from chaos.faults import ProviderFaults
from chaos.server import LoopbackServer
from chaos.trace import REQUEST_HEADER

MESSAGES = [{"role": "user", "content": "hi"}]


def faults(spec: dict[str, dict]) -> dict[str, ProviderFaults]:  # type: ignore[type-arg]
    return {k: ProviderFaults.parse(k, v) for k, v in spec.items()}


def test_serves_openai_and_azure_clients_over_loopback() -> None:
    spec = {"openai/gpt-4o": {"latency": 0.1}, "azure/dep": {"latency": 0.1}}
    with LoopbackServer(faults(spec), seed=1, time_scale=0.01) as server:
        assert server.url.startswith("http://127.0.0.1:")
        oa = openai.OpenAI(api_key="x", base_url=server.url + "/v1", max_retries=0)
        az = openai.AzureOpenAI(
            api_key="x", api_version="2024-10-21", azure_endpoint=server.url, max_retries=0
        )
        assert (
            oa.chat.completions.create(model="gpt-4o", messages=MESSAGES).choices[0].message.content
            == "ok"
        )
        assert az.chat.completions.create(model="dep", messages=MESSAGES).model == "dep"
        text = "".join(
            c.choices[0].delta.content or ""
            for c in oa.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        )
        assert text == "t0t1t2t3"
        assert [r.key for r in server.trace.http] == ["openai/gpt-4o", "azure/dep", "openai/gpt-4o"]
        oa.close()
        az.close()
    assert not server.running


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("503", openai.InternalServerError),
        ("429", openai.RateLimitError),
        ("reset", openai.APIConnectionError),
        ("401", openai.AuthenticationError),
    ],
)
def test_faults_over_real_sockets(fault: str, error: type[Exception]) -> None:
    spec = {
        "openai/gpt-4o": {
            "errors": {fault: 1.0},
            "retry_after": {"header": "retry-after-ms", "kind": "fixed", "value": 1.25},
        }
    }
    with LoopbackServer(faults(spec), seed=1, time_scale=0.01) as server:
        client = openai.OpenAI(api_key="x", base_url=server.url + "/v1", max_retries=0)
        with pytest.raises(error) as info:
            client.chat.completions.create(
                model="gpt-4o", messages=MESSAGES, extra_headers={REQUEST_HEADER: "5"}
            )
        if fault == "429":
            assert info.value.response.headers["retry-after-ms"] == "1250"  # type: ignore[attr-defined]
        assert server.trace.http[0].request == 5
        client.close()


def test_stream_cut_over_sockets() -> None:
    spec = {"openai/gpt-4o": {"stream_cut": {"probability": 1.0, "after_chunks": 1}}}
    with LoopbackServer(faults(spec), seed=1, time_scale=0.01) as server:
        client = openai.OpenAI(api_key="x", base_url=server.url + "/v1", max_retries=0)
        got: list[str | None] = []

        def read_all() -> None:
            for c in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
                got.append(c.choices[0].delta.content)

        with pytest.raises(Exception):  # noqa: B017, PT011  (the HTTP library's own error)
            read_all()
        assert got == ["t0"]
        client.close()


def test_bounded_in_requests_and_time() -> None:
    spec = {"openai/gpt-4o": {}}
    with LoopbackServer(faults(spec), seed=1, max_requests=2) as server:
        client = openai.OpenAI(api_key="x", base_url=server.url + "/v1", max_retries=0)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        with pytest.raises(openai.InternalServerError, match="request bound"):
            client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        client.close()
    server = LoopbackServer(faults(spec), seed=1, max_seconds=0.3).start()
    time.sleep(1.0)
    assert not server.running  # stopped by itself
    server.stop()


def test_any_http11_client_chunked_request_bodies_and_keep_alive() -> None:
    """The wire format is h11's: a request body sent in chunks (what an HTTP client sends for a
    streamed upload) is read whole, and the connection then serves the next request."""
    import json

    import httpx

    spec = {"openai/gpt-4o": {}}
    body = json.dumps({"model": "gpt-4o", "messages": MESSAGES}).encode()
    with LoopbackServer(faults(spec), seed=1) as server, httpx.Client(base_url=server.url) as c:
        chunked = c.post(
            "/v1/chat/completions",
            content=iter([body[:10], body[10:]]),
            headers={"content-type": "application/json"},
        )
        assert chunked.request.headers["transfer-encoding"] == "chunked"
        assert chunked.status_code == 200, chunked.text
        assert chunked.json()["object"] == "chat.completion"
        again = c.post("/v1/chat/completions", content=body)  # same connection, kept alive
        assert again.status_code == 200
        assert c.get("/health").json() == {"ok": True}
        assert c.get("/nowhere").status_code == 404
    assert [r.key for r in server.trace.http] == ["openai/gpt-4o", "openai/gpt-4o"]
