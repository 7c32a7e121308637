"""Client patching: a managed client's class is swapped for a cached subclass that hooks ``request``.

Every SDK path (``create``, ``stream=True``, ``parse``, ``stream``, ``with_raw_response``,
``with_streaming_response``) ends in ``client.request(cast_to, options, ...)``, and copies made with
``with_options``/``copy`` are built as ``self.__class__(...)``, so one hook on the class reaches all
of them. Restoring the original class (on the client and on every copy) unpatches exactly.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

from ._call import CallState

if TYPE_CHECKING:
    from ._assembly import Pipeline


class Router(Protocol):
    """What patching needs of the wrapper that serves a client (``RetryWrapper``)."""

    pipeline: Pipeline
    #: Runs a routed call to its result (the pipeline's driver, traced when tracing is on).
    drive: Callable[[CallState], Any]

    def route(self, options: Any) -> str | None:
        """The first model key of a managed call, or ``None`` to pass the request through."""
        ...


#: Instance attribute holding the :class:`Slot` of a managed client and of its copies.
SLOT_ATTR: Final = "_notdiamond_slot"


class Slot:
    """Shared by a managed client and every copy made from it: which wrapper serves them now."""

    __slots__ = ("copies", "original_class", "wrapper")

    def __init__(self, wrapper: Router, original_class: type) -> None:
        self.wrapper: Router | None = wrapper
        self.original_class = original_class
        self.copies: weakref.WeakSet[Any] = weakref.WeakSet()

    def adopt(self, copy: Any) -> None:
        """Serve a copy just made from a managed client, or restore it if the slot was closed.

        Under the module lock, as ``uninstall`` is: a copy made while ``close()`` runs in another
        thread is either adopted before the slot is restored (and restored with it) or sees the
        closed slot here and is restored at once; none keeps the patched class.
        """
        with _lock:
            if self.wrapper is None:
                if type(copy) is not self.original_class:
                    copy.__class__ = self.original_class
                return
            copy.__dict__[SLOT_ATTR] = self
            self.copies.add(copy)


_lock = threading.Lock()
_patched_classes: dict[type, type] = {}


def install(client: Any, wrapper: Router) -> None:
    """Route ``client``'s chat completions through ``wrapper``; replaces an earlier wrapper."""
    with _lock:
        slot: Slot | None = client.__dict__.get(SLOT_ATTR)
        if slot is not None and client in slot.copies:  # a copy: managed on its own from now
            slot.copies.discard(client)
            client.__dict__[SLOT_ATTR] = Slot(wrapper, slot.original_class)
            return
        if slot is not None:
            slot.wrapper = wrapper
            return
        original = type(client)
        client.__dict__[SLOT_ATTR] = Slot(wrapper, original)
        client.__class__ = _patched_class(original)


def uninstall(client: Any, wrapper: Router) -> bool:
    """Restore ``client`` and its copies if ``wrapper`` still serves them; report whether it did."""
    with _lock:
        slot: Slot | None = client.__dict__.get(SLOT_ATTR)
        if slot is None or slot.wrapper is not wrapper:
            return False
        slot.wrapper = None
        # Copies are adopted under the same lock, so the set cannot change while it is read.
        for obj in (client, *list(slot.copies)):
            obj.__class__ = slot.original_class
            obj.__dict__.pop(SLOT_ATTR, None)
        slot.copies.clear()
        return True


def original_class(client: Any) -> Any:
    slot: Slot | None = client.__dict__.get(SLOT_ATTR)
    return slot.original_class if slot is not None else type(client)


def _patched_class(base: type) -> type:
    cls = _patched_classes.get(base)
    if cls is None:
        cls = _patched_classes[base] = _make_patched_class(base)
    return cls


def _make_patched_class(base: Any) -> type:
    base_request = base.request
    base_copy = base.copy

    def copy(self: Any, *args: Any, **kwargs: Any) -> Any:
        new = base_copy(self, *args, **kwargs)  # built as ``self.__class__(...)``: patched
        slot: Slot | None = self.__dict__.get(SLOT_ATTR)
        if slot is not None:
            slot.adopt(new)
        elif type(new) is not base:  # ``self`` was restored by close() while the copy was built
            new.__class__ = base
        return new

    # The async SDK's ``request`` is a coroutine function; this hook returns the coroutine of
    # either the pipeline (the wrapper's ``drive``) or the original method, so one plain
    # function serves both kinds.
    def request(
        self: Any, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None
    ) -> Any:
        slot: Slot | None = self.__dict__.get(SLOT_ATTR)
        wrapper = slot.wrapper if slot is not None else None  # read once: close() may clear it
        if wrapper is not None and (key := wrapper.route(options)) is not None:
            return wrapper.drive(
                CallState(
                    wrapper.pipeline, wrapper, self, key, cast_to, options, stream, stream_cls
                )
            )
        return base_request(self, cast_to, options, stream=stream, stream_cls=stream_cls)

    namespace = {
        "request": request,
        "copy": copy,
        "with_options": copy,
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__doc__": base.__doc__,
    }
    return type(base.__name__, (base,), namespace)
