"""The failed attempts attached to the error a managed call raises, as typed records."""

from __future__ import annotations

from typing import Final, NamedTuple

#: Attribute of the raised exception holding the call's failed attempts, oldest first.
FAILURES_ATTR: Final = "notdiamond_failures"


class Failure(NamedTuple):
    """One failed attempt of a managed call."""

    #: The configured model key that was tried, e.g. ``"openai/gpt-4o"``.
    model: str
    #: 1 for the first attempt on that model within the call, 2 for its first retry, ...
    attempt: int
    #: What the attempt raised (an ``openai.APIError`` subclass, or a non-SDK exception).
    error: Exception


def failures_of(exc: BaseException) -> tuple[Failure, ...]:
    """Every failed attempt of the call that raised ``exc``, oldest first; ``()`` for any other.

    ``exc`` is the error a managed call raised: the last attempt's own SDK exception, so code that
    catches ``openai.APIError`` keeps working; this recovers the attempts before it::

        try:
            client.chat.completions.create(model="notdiamond", messages=messages)
        except openai.APIError as exc:
            for failure in notdiamond.failures_of(exc):
                print(failure.model, failure.attempt, type(failure.error).__name__)
    """
    recorded = getattr(exc, FAILURES_ATTR, None)
    if not isinstance(recorded, tuple):
        return ()
    return tuple(each if isinstance(each, Failure) else Failure(*each) for each in recorded)
