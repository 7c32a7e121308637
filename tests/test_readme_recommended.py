"""The README's "Recommended for production" block is the benchmarks' recommended row, and runs.

The block's ``notdiamond.init`` arguments must equal ``benchmarks.contenders.recommended_options()``
(plus the benchmarks' two models) exactly, so the figures the README quotes were measured on what it
recommends. Then the block runs as written against the in-process fake providers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest

import notdiamond
from benchmarks import fake_provider
from benchmarks.contenders import recommended_options
from benchmarks.scenarios import MODELS

README = Path(__file__).resolve().parent.parent / "README.md"
HEADING = "Recommended for production"


def _block() -> str:
    text = README.read_text()
    start = text.index(HEADING)
    match = re.compile(r"```python\n(.*?)```", flags=re.DOTALL).search(text, start)
    assert match, f"README.md has no python example after {HEADING!r}"
    return match.group(1)


def _init_call(code: str) -> ast.Call:
    calls = [
        node
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "init"
    ]
    assert len(calls) == 1, "the recommended block should call notdiamond.init once"
    return calls[0]


def test_the_readme_recommends_exactly_what_the_benchmarks_measure() -> None:
    call = _init_call(_block())
    written: dict[str, Any] = {}
    for keyword in call.keywords:
        assert keyword.arg is not None, "no **options in the recommended block"
        written[keyword.arg] = ast.literal_eval(keyword.value)
    assert written.pop("models") == MODELS
    assert written == recommended_options()


def test_the_recommended_block_runs_as_written(capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {
        "__name__": "readme_recommended",
        "notdiamond": notdiamond,
        "openai_client": fake_provider.openai_client(),
        "azure_client": fake_provider.azure_client(),
    }
    exec(compile(_block(), str(README), "exec"), namespace)
    manager = namespace["manager"]
    try:
        assert isinstance(manager, notdiamond.RetryManager)
        answer = namespace["openai_client"].chat.completions.create(
            model="notdiamond", messages=fake_provider.MESSAGES
        )
        assert answer.choices[0].message.content
        printed = capsys.readouterr().out
        assert all(key in printed for key in MODELS)  # health() names every model
    finally:
        manager.close()
