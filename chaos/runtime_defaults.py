"""The runtime's defaults for time, randomness and observation, swapped for a test's duration.

``notdiamond.init`` (and the original ``RetryManager(models, wrappers)``) take every keyword-only
option through ``notdiamond._options.parse_options``, which fills in the options a caller did not
give from the table ``notdiamond._options.OPTIONS``. Inside :func:`virtual_defaults`, the rows of
``clock``, ``sleep``, ``seed`` and ``observer`` are replaced, so an application's own ``init`` line,
unchanged, builds a manager that

- reads the test's virtual clock and sleeps on it (sync clients; async clients keep the runtime's
  ``anyio.sleep``, which is virtual on the plugin's event loop);
- draws weighted choices from a fixed seed (the test replays exactly);
- reports every attempt and breaker transition to the test's trace, and to the application's own
  ``observer=`` as well when it gives one.

A ``clock=``, ``sleep=`` or ``seed=`` the application passes itself wins: it is used as given.
Outside the block the table is exactly as before.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Final

#: Marks an option the caller did not give (``None`` is a value some options accept).
_NOT_GIVEN: Final = object()


def _table() -> MutableMapping[str, Any]:
    from notdiamond import _options

    table = _options.OPTIONS
    if not isinstance(table, MutableMapping):  # pragma: no cover - a change in the runtime
        raise RuntimeError("notdiamond._options.OPTIONS is no longer a dict: update the plugin.")
    return table


@contextlib.contextmanager
def virtual_defaults(
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    seed: Callable[[], int],
    observer: Callable[[Any], None],
) -> Iterator[None]:
    """Within the block, managers built without ``clock=``/``sleep=``/``seed=`` get these
    (``seed()`` is read when a manager is built), and every manager reports to ``observer``
    (besides its own ``observer=``, if any)."""
    from notdiamond._options import Option, OptionContext

    table = _table()
    originals = {name: table[name] for name in ("clock", "sleep", "seed", "observer")}

    def replaced(name: str, default_for: Callable[[OptionContext], object]) -> Option:
        original = originals[name]

        def check(value: object, context: OptionContext) -> object:
            if value is _NOT_GIVEN:
                value = default_for(context)
            return original.check(value, context)

        row: Option = dataclasses.replace(original, default=_NOT_GIVEN, check=check)
        return row

    def both_observers(value: object, context: OptionContext) -> object:
        own = originals["observer"].check(None if value is _NOT_GIVEN else value, context)
        if own is None:
            return observer

        def report(event: Any) -> None:
            observer(event)
            own(event)

        return report

    table["clock"] = replaced("clock", lambda _: clock)
    # async clients: the runtime's own default (anyio.sleep), virtual on the plugin's loop
    table["sleep"] = replaced("sleep", lambda context: None if context.is_async else sleep)
    table["seed"] = replaced("seed", lambda _: seed())
    table["observer"] = dataclasses.replace(
        originals["observer"], default=_NOT_GIVEN, check=both_observers
    )
    try:
        yield
    finally:
        table.update(originals)
