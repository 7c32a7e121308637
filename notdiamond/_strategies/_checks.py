"""Validation of the strategies' numeric options: each refusal names the option and the fix."""

from __future__ import annotations

import math


def _number(where: str, value: object, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{where} must be a number, got {value!r}. E.g. {example}.")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{where} must be a finite number, got {value!r}. E.g. {example}.")
    return number


def count(where: str, value: object, example: str) -> int:
    """An integer >= 1 (``bool`` refused)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{where} must be a whole number >= 1, got {value!r}. E.g. {example}.")
    if value < 1:
        raise ValueError(f"{where} must be a whole number >= 1, got {value!r}. E.g. {example}.")
    return value


def seconds(where: str, value: object, example: str) -> float:
    """A finite number of seconds > 0."""
    number = _number(where, value, example)
    if number <= 0:
        raise ValueError(f"{where} must be a number of seconds > 0, got {value!r}. E.g. {example}.")
    return number


def non_negative(where: str, value: object, example: str) -> float:
    """A finite number >= 0."""
    number = _number(where, value, example)
    if number < 0:
        raise ValueError(f"{where} must be a number >= 0, got {value!r}. E.g. {example}.")
    return number


def share(where: str, value: object, example: str) -> float:
    """A fraction in (0, 1]."""
    number = _number(where, value, example)
    if not 0 < number <= 1:
        raise ValueError(
            f"{where} is a share of failed attempts: a number above 0 and at most 1, "
            f"got {value!r}. E.g. {example}."
        )
    return number
