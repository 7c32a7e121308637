"""The library's logger and the structured fields of its records about calls."""

from __future__ import annotations

import logging
from typing import Any, Final

#: The one logger; its name is the only ``notdiamond`` prefix of a record (messages carry none).
logger: Final = logging.getLogger("notdiamond")


def log_fields(call_id: int | None, attempt: int | None, model: str | None) -> dict[str, Any]:
    """The ``extra`` of a record about a call, for structured logging (JSON formatters)."""
    return {
        "notdiamond_call_id": call_id,
        "notdiamond_attempt": attempt,
        "notdiamond_model": model,
    }
