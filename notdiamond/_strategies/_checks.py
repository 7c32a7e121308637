"""Validation of the strategies' numeric options: each refusal names the option and the fix."""

from __future__ import annotations

import math
from typing import TypeVar

from notdiamond._numbers import describe, real_number, whole_number


def _number(where: str, value: object, example: str) -> float:
    """A finite float from any real number type (numpy scalars, Fraction, ...; ``bool`` refused)."""
    try:
        number = real_number(value, where=where, expected="a number")
    except TypeError:
        raise TypeError(
            f"{where} must be a number, got {describe(value)}. E.g. {example}."
        ) from None
    except ValueError:  # beyond a float
        number = math.inf
    if not math.isfinite(number):
        raise ValueError(f"{where} must be a finite number, got {describe(value)}. E.g. {example}.")
    return number


def count(where: str, value: object, example: str) -> int:
    """An integer >= 1 of any integer type (``bool`` refused)."""
    fix = f"{where} must be a whole number >= 1, got {describe(value)}. E.g. {example}."
    try:
        number = whole_number(value, where=where, expected="a whole number")
    except TypeError:
        raise TypeError(fix) from None
    if number < 1:
        raise ValueError(fix)
    return number


def seconds(where: str, value: object, example: str) -> float:
    """A finite number of seconds > 0."""
    number = _number(where, value, example)
    if number <= 0:
        raise ValueError(
            f"{where} must be a number of seconds > 0, got {describe(value)}. E.g. {example}."
        )
    return number


def non_negative(where: str, value: object, example: str) -> float:
    """A finite number >= 0."""
    number = _number(where, value, example)
    if number < 0:
        raise ValueError(f"{where} must be a number >= 0, got {describe(value)}. E.g. {example}.")
    return number


def share(where: str, value: object, example: str) -> float:
    """A fraction in (0, 1]."""
    number = _number(where, value, example)
    if not 0 < number <= 1:
        raise ValueError(
            f"{where} is a share of failed attempts: a number above 0 and at most 1, "
            f"got {describe(value)}. E.g. {example}."
        )
    return number


T = TypeVar("T")


def switch(name: str, value: object, options: type[T]) -> T | None:
    """A strategy's init option: ``options(...)`` itself, ``True`` (its defaults) or
    ``None``/``False`` (off)."""
    if value is None or value is False:
        return None
    if value is True:
        return options()
    if isinstance(value, options):
        return value
    raise TypeError(
        f"{name} must be notdiamond.{options.__name__}(...), True (the defaults) or None/False "
        f"(off), got {describe(value)}."
    )
