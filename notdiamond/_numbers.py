"""Numbers as users give them, read once for every option and setting.

:func:`real_number` and :func:`whole_number` accept every real number type a user may hold
(``int``, ``float``, ``fractions.Fraction``, ``decimal.Decimal``, numpy scalars: whatever is a
``numbers.Real`` or implements ``__index__`` / ``__float__``), refuse ``bool``, and turn values
beyond a float into a ``ValueError`` naming the fix instead of an ``OverflowError``.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Final

#: The longest single wait (backoff or Retry-After) and the longest attempt timeout, in seconds
#: (about 31.7 years). ``time.sleep`` and socket timeouts fail beyond about 9.2e9 s (2**63 ns),
#: so a longer value could only end a call in an ``OverflowError``; ``init`` refuses it instead.
MAX_WAIT: Final = 1e9

#: Default cap on a server-requested wait; beyond it the call falls back instead of waiting.
DEFAULT_RETRY_AFTER_CAP: Final = 60.0


# -- numbers ---------------------------------------------------------------------------------


def describe(value: object) -> str:
    """``repr(value)``, except that a huge integer is described by its size, not its digits."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"an integer of about {digits} digits"
    try:
        text = repr(value)
    except Exception:  # a user's object whose repr fails
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."


def is_boolean(value: object) -> bool:
    """``value`` is a ``bool`` or numpy's bool (neither is taken as a number)."""
    # numpy's bool is neither a bool nor a number, but converts to 0.0/1.0 through __float__.
    kind = type(value)
    return isinstance(value, bool) or (
        kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_")
    )


def _is_array(value: object) -> bool:
    return getattr(value, "ndim", 0) != 0


def real_number(value: object, *, where: str, expected: str) -> float:
    """``value`` as a float, if it is a real number of any type; else ``TypeError``.

    ``expected`` says what ``where`` holds (e.g. "seconds per attempt as a number"). A value too
    large for a float raises ``ValueError``; the caller checks the range of the result.
    """
    kind = type(value)
    if (
        is_boolean(value)
        or _is_array(value)
        or isinstance(value, str | bytes)
        or (isinstance(value, numbers.Complex) and not isinstance(value, numbers.Real))
        or not (
            isinstance(value, numbers.Real)
            or hasattr(kind, "__index__")
            or hasattr(kind, "__float__")
        )
    ):
        raise TypeError(f"{where}: expected {expected}, got {describe(value)} ({kind.__name__}).")
    try:
        if isinstance(value, float) or hasattr(kind, "__float__"):
            return float(value)  # type: ignore[arg-type]
        return float(operator.index(value))  # type: ignore[arg-type]
    except OverflowError:
        raise ValueError(
            f"{where}: {describe(value)} is too large for a float (the largest is about "
            f"{1.8e308:g}). Use a smaller number."
        ) from None
    except (TypeError, ValueError, ArithmeticError) as exc:
        raise TypeError(
            f"{where}: expected {expected}, got {describe(value)}, which does not convert to a "
            f"float ({exc})."
        ) from None


def whole_number(value: object, *, where: str, expected: str) -> int:
    """``value`` as an int, if it is an integer of any type (``__index__``); else ``TypeError``."""
    kind = type(value)
    if is_boolean(value) or _is_array(value) or not hasattr(kind, "__index__"):
        raise TypeError(f"{where}: expected {expected}, got {describe(value)} ({kind.__name__}).")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError as exc:
        raise TypeError(f"{where}: expected {expected}, got {describe(value)} ({exc}).") from None
