"""The README's typed / ``async with`` example runs as written (like tests/test_readme.py)."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest

from chaos.faults import ProviderFaults
from chaos.server import LoopbackServer

README = Path(__file__).resolve().parent.parent / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text()
    start = text.index(heading)
    match = re.compile(r"```python\n(.*?)```", flags=re.DOTALL).search(text, start)
    assert match, f"README.md has no python example after {heading!r}"
    return match.group(1)


def test_the_typed_async_example_runs_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ("openai/gpt-4o", "azure/gpt-4o")
    with LoopbackServer({k: ProviderFaults(key=k) for k in keys}, seed=0) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-readme-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-readme-test")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
        monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
        namespace: dict[str, object] = {"__name__": "readme_forms"}
        code = _block_after("### Typed, async, and which model answered")
        exec(compile(code, str(README), "exec"), namespace)

    served, _, answer = capsys.readouterr().out.strip().partition(" ")
    assert served == "openai/gpt-4o"  # the list's first model answered
    assert answer
    [request] = server.trace.http
    assert request.key == served
    # ``async with`` restored both clients
    clients = namespace["clients"]
    assert [type(c) for c in clients] == [openai.AsyncOpenAI, openai.AsyncAzureOpenAI]  # type: ignore[attr-defined]
