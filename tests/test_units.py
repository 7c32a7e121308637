"""Selection and retry policy as units: the building blocks the pipeline composes."""

from __future__ import annotations

import random
from collections import Counter

import httpx
import openai
import pytest

from notdiamond._policy import is_transient, retry_after_seconds
from notdiamond._selection import PriorityOrder, WeightedDraw


def _status_error(code: int, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx.Response(code, headers=headers or {}, request=request)
    return openai.APIStatusError("fake", response=response, body=None)  # type: ignore[arg-type]


def test_priority_order() -> None:
    order = PriorityOrder(("a/1", "a/2", "b/1"))
    assert order.first() == "a/1"
    assert order.next_model({"a/1"}) == "a/2"
    assert order.next_model({"a/2"}) == "a/1"
    assert order.next_model({"a/1", "a/2", "b/1"}) is None


def test_weighted_draw_excludes_zero_weights_and_renormalises() -> None:
    draw = WeightedDraw(("a/1", "a/2", "b/1", "b/2"), (0.5, 0.25, 0.25, 0.0), random.Random(0))
    assert draw.keys == ("a/1", "a/2", "b/1")
    firsts = Counter(draw.first() for _ in range(20000))
    assert "b/2" not in firsts
    assert firsts["a/1"] / 20000 == pytest.approx(0.5, abs=0.02)
    after = Counter(draw.next_model({"a/1"}) for _ in range(20000))
    assert set(after) == {"a/2", "b/1"}
    assert after["a/2"] / 20000 == pytest.approx(0.5, abs=0.02)  # the seed's 50/50 example
    assert draw.next_model({"a/1", "a/2", "b/1"}) is None


def test_weighted_draw_handles_the_top_of_the_unit_interval() -> None:
    class Top(random.Random):
        def random(self) -> float:
            return 1.0 - 2**-53

    assert WeightedDraw(("a/1", "b/1"), (0.1, 0.2), Top()).first() == "b/1"


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (_status_error(408), True),
        (_status_error(409), True),
        (_status_error(429), True),
        (_status_error(500), True),
        (_status_error(599), True),
        (_status_error(400), False),
        (_status_error(401), False),
        (_status_error(403), False),
        (_status_error(404), False),
        (_status_error(422), False),
        (_status_error(418), False),
        (openai.APITimeoutError(request=httpx.Request("POST", "https://x")), True),
        (openai.APIConnectionError(request=httpx.Request("POST", "https://x")), True),
        (ValueError("x"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"retry-after": "3"}, 3.0),
        ({"retry-after": "0.25"}, 0.25),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "x", "retry-after": "2"}, 2.0),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "0"}, None),
        ({"retry-after": "later"}, None),
        ({"retry-after": "Wed, 25 Nov 2026 12:00:10 GMT"}, 10.0),
    ],
)
def test_retry_after_seconds(headers: dict[str, str], seconds: float | None) -> None:
    now = 1795608000.0  # 2026-11-25 12:00:00 UTC
    assert retry_after_seconds(_status_error(429, headers), now=now) == seconds
