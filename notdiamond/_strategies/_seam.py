"""Stand-in for ``notdiamond._strategy`` until the pipeline restructure lands (same hook signatures)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal, Protocol

Admission = Literal["admit", "probe", "skip"]


class CallState(Protocol):
    @property
    def call_id(self) -> int: ...
    @property
    def probing(self) -> str | None: ...


class Strategy:
    name: ClassVar[str] = "strategy"

    def admit(self, call: CallState, key: str, now: float) -> Admission:
        return "admit"

    def last_resort(self, call: CallState, skipped: Sequence[str], now: float) -> str | None:
        return None

    def attempt_started(self, call: CallState, key: str, attempt: int, now: float) -> None:
        pass

    def attempt_succeeded(self, call: CallState, key: str, now: float) -> None:
        pass

    def attempt_failed(self, call: CallState, key: str, exc: Exception, now: float) -> None:
        pass

    def allow_retry(self, call: CallState, key: str, wait: float, now: float) -> bool:
        return True

    def readmit(self, call: CallState, key: str, now: float) -> bool:
        return True

    def attempt_abandoned(self, call: CallState, key: str) -> None:
        pass
