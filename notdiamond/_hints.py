"""Did-you-mean hints: the Damerau-Levenshtein distance and the one-typo-away test built on it.

Used by ``init`` (per-model settings keys, unknown options, provider names) and by the per-call
warning for a ``model`` that is one typo away from a configured one.
"""

from __future__ import annotations

from collections.abc import Iterable


def damerau_levenshtein(a: str, b: str) -> int:
    """The Damerau-Levenshtein distance between ``a`` and ``b``.

    The least number of single-character insertions, deletions, substitutions and transpositions
    of two adjacent characters that turn ``a`` into ``b`` (the unrestricted distance: a
    transposed pair may be edited again, so ``"ca"`` -> ``"abc"`` is 2).
    """
    if a == b:
        return 0
    if not a or not b:
        return len(a) + len(b)
    infinity = len(a) + len(b)
    # d[i + 1][j + 1] is the distance between a[:i] and b[:j]; row and column 0 hold infinity.
    d = [[infinity] * (len(b) + 2) for _ in range(len(a) + 2)]
    for i in range(len(a) + 1):
        d[i + 1][1] = i
    for j in range(len(b) + 1):
        d[1][j + 1] = j
    last_row: dict[str, int] = {}  # character -> last row of ``a`` (1-based) where it occurred
    for i in range(1, len(a) + 1):
        last_match_col = 0  # last column of ``b`` (1-based) matching a[i - 1] in this row
        for j in range(1, len(b) + 1):
            k = last_row.get(b[j - 1], 0)
            ell = last_match_col
            cost = 0 if a[i - 1] == b[j - 1] else 1
            if cost == 0:
                last_match_col = j
            d[i + 1][j + 1] = min(
                d[i][j] + cost,  # substitution (or match)
                d[i + 1][j] + 1,  # insertion
                d[i][j + 1] + 1,  # deletion
                d[k][ell] + (i - k - 1) + 1 + (j - ell - 1),  # transposition
            )
        last_row[a[i - 1]] = i
    return d[len(a) + 1][len(b) + 1]


def near_miss(name: str, candidates: Iterable[str]) -> str | None:
    """The first of ``candidates`` exactly one typo away from ``name``, else ``None``.

    One typo is a Damerau-Levenshtein distance of 1: one character inserted, deleted, replaced,
    or two adjacent characters swapped (``"openai/gpt4o"`` for ``"openai/gpt-4o"``). A candidate
    equal to ``name`` is not a miss.
    """
    for candidate in candidates:
        # Lengths more than one apart cannot be one edit apart: skip the table.
        if abs(len(candidate) - len(name)) <= 1 and damerau_levenshtein(name, candidate) == 1:
            return candidate
    return None
