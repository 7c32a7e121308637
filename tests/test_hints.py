"""The Damerau-Levenshtein distance and ``near_miss``, against a brute-force reference."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from notdiamond._hints import damerau_levenshtein, near_miss

ALPHABET = "ab/c"


def _one_edit(word: str) -> set[str]:
    """Every string one insertion, deletion, substitution or adjacent swap away from ``word``."""
    out: set[str] = set()
    for i in range(len(word) + 1):
        for ch in ALPHABET:
            out.add(word[:i] + ch + word[i:])
    for i in range(len(word)):
        out.add(word[:i] + word[i + 1 :])
        for ch in ALPHABET:
            out.add(word[:i] + ch + word[i + 1 :])
        if i + 1 < len(word):
            out.add(word[:i] + word[i + 1] + word[i] + word[i + 2 :])
    return out


@cache
def _reference(a: str, b: str) -> int:
    """Shortest sequence of edits, by breadth-first search (edits may touch a spot again)."""
    limit = len(a) + len(b)
    frontier, seen = {a}, {a}
    for distance in range(limit + 1):
        if b in frontier:
            return distance
        frontier = {n for w in frontier for n in _one_edit(w) if len(n) <= limit} - seen
        seen |= frontier
    raise AssertionError("unreachable")


words = st.text(alphabet=ALPHABET, max_size=4)


@given(words, words)
def test_distance_is_the_shortest_edit_sequence(a: str, b: str) -> None:
    assert damerau_levenshtein(a, b) == _reference(a, b)


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [
        ("", "", 0),
        ("", "abc", 3),
        ("openai/gpt-4o", "openai/gpt-4o", 0),
        ("openai/gpt4o", "openai/gpt-4o", 1),  # deletion
        ("openai/gpt-4oo", "openai/gpt-4o", 1),  # insertion
        ("openai/gpt-4a", "openai/gpt-4o", 1),  # substitution
        ("opneai/gpt-4o", "openai/gpt-4o", 1),  # adjacent swap
        ("ca", "abc", 2),  # unrestricted: the restricted (OSA) distance would be 3
        ("openai/gpt-4o", "azure/gpt-4o", 6),
    ],
)
def test_known_distances(a: str, b: str, distance: int) -> None:
    assert damerau_levenshtein(a, b) == distance
    assert damerau_levenshtein(b, a) == distance


def test_near_miss() -> None:
    keys = ["openai/gpt-4o", "openai/gpt-4o-mini", "azure/gpt-4o"]
    assert near_miss("openai/gpt4o", keys) == "openai/gpt-4o"
    assert near_miss("azure/gtp-4o", keys) == "azure/gpt-4o"
    assert near_miss("openai/gpt-4o-mni", iter(keys)) == "openai/gpt-4o-mini"  # any iterable
    assert near_miss("openai/gpt-4o", keys) is None  # equal is not a miss
    assert near_miss("openai/o1", keys) is None
    assert near_miss("", ["a"]) == "a"
    assert near_miss("x", []) is None


@given(st.text(alphabet=ALPHABET, max_size=5), st.lists(words, max_size=5))
def test_near_miss_returns_the_first_candidate_one_edit_away(
    name: str, candidates: list[str]
) -> None:
    expected = next((c for c in candidates if c != name and c in _one_edit(name)), None)
    assert near_miss(name, candidates) == expected
