"""The README's usage example runs as written, against the harness's loopback fake provider."""

from __future__ import annotations

import re
from pathlib import Path

import openai
import pytest

from chaos.faults import ProviderFaults
from chaos.server import LoopbackServer

README = Path(__file__).resolve().parent.parent / "README.md"


def _first_python_block() -> str:
    match = re.search(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert match, "README.md has no python example"
    return match.group(1)


def test_readme_example_runs_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ("openai/gpt-4o", "azure/gpt-4o")
    with LoopbackServer({k: ProviderFaults(key=k) for k in keys}, seed=0) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-readme-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-readme-test")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
        monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
        namespace: dict[str, object] = {"__name__": "readme_example"}
        exec(compile(_first_python_block(), str(README), "exec"), namespace)

    printed = capsys.readouterr().out.strip()
    assert printed  # the fake provider's answer
    [request] = server.trace.http
    assert request.key in keys
    # the example closed its manager: both clients are plain SDK clients again
    assert type(namespace["openai_client"]) is openai.OpenAI
    assert type(namespace["azure_client"]) is openai.AzureOpenAI
