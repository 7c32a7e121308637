"""The ``fleet`` field of a scenario: several processes sharing breaker state through Redis.

```jsonc
"mode": "fleet",
"fleet": {
  "processes": 4,          // worker processes (multiprocessing, spawn), >= 1
  "sync_interval": 0.1,    // RedisState(sync_interval=...), real seconds
  "timeout": 0.1,          // RedisState(timeout=...): a slower round trip marks Redis unreachable
  "probe_lease": 5.0,      // RedisState(probe_lease=...)
  "redis_down": [1.5, 3.0] // optional: kill Redis at 1.5 s of the run, start it again at 3.0 s
}
```

A fleet run is real time: the breaker's durations become Redis TTLs, which run on the wall clock,
so every duration of a fleet scenario (outage windows, ``break_duration``, the traffic's
``interval``) is in real seconds, kept small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

FLEET_FIELDS: Final = frozenset(
    {"processes", "sync_interval", "timeout", "probe_lease", "redis_down"}
)


@dataclass(frozen=True)
class FleetSettings:
    processes: int = 4
    sync_interval: float = 0.1
    timeout: float = 0.1
    probe_lease: float = 5.0
    #: (kill at, start again at), seconds of the run; None: Redis stays up.
    redis_down: tuple[float, float] | None = None

    @property
    def local_bound(self) -> float:
        """How long a process may go on shared state after Redis stops answering (RedisState's
        documented bound): one sync interval plus one round trip's ``timeout``."""
        return self.sync_interval + self.timeout


def parse_fleet(raw: object) -> FleetSettings:
    """Validate the ``fleet`` object; ``ValueError`` names the field and the fix."""
    if not isinstance(raw, Mapping):
        raise ValueError('fleet: an object such as {"processes": 4, "sync_interval": 0.1}.')
    unknown = sorted(set(raw) - FLEET_FIELDS)
    if unknown:
        raise ValueError(f"fleet: unknown field(s) {unknown}; allowed: {sorted(FLEET_FIELDS)}.")
    processes = raw.get("processes", 4)
    if isinstance(processes, bool) or not isinstance(processes, int) or not 1 <= processes <= 64:
        raise ValueError(f"fleet.processes: a whole number in [1, 64], got {processes!r}.")
    numbers: dict[str, float] = {}
    for name, default in (("sync_interval", 0.1), ("timeout", 0.1), ("probe_lease", 5.0)):
        value = raw.get(name, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not (math.isfinite(value) and value > 0)
        ):
            raise ValueError(f"fleet.{name}: real seconds > 0, got {value!r}.")
        numbers[name] = float(value)
    down = raw.get("redis_down")
    window: tuple[float, float] | None = None
    if down is not None:
        if (
            not isinstance(down, list)
            or len(down) != 2
            or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in down)
            or not 0 <= down[0] < down[1]
        ):
            raise ValueError(
                "fleet.redis_down: [kill at, start again at] in seconds of the run, "
                f"0 <= kill < start, e.g. [1.5, 3.0]; got {down!r}."
            )
        window = (float(down[0]), float(down[1]))
    return FleetSettings(
        processes=processes,
        sync_interval=numbers["sync_interval"],
        timeout=numbers["timeout"],
        probe_lease=numbers["probe_lease"],
        redis_down=window,
    )
