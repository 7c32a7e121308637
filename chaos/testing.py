"""The pytest plugin's ``chaos`` fixture: fake providers with faults, on virtual time.

:class:`Chaos` is what a test receives. ``chaos.providers(faults)`` builds OpenAI and Azure
clients (sync and async) whose HTTP goes to the harness's fake provider
(:mod:`chaos.transport`), with a fault model per ``"<provider>/<model>"`` given as a dict or a
scenario file. While the fixture is active:

* one virtual clock is the test's time: the sync fake providers advance it by each answer's
  latency, ``chaos.sleep(s)`` by ``s``; async code run by ``chaos.run(...)`` runs on an event loop
  whose time is the same clock, so sleeps and latencies pass without waiting;
* a manager built by the application's own ``notdiamond.init`` line, unchanged, reads that clock,
  backs off on it, draws weighted choices from the fixture's seed and reports every attempt to the
  trace (:mod:`chaos.runtime_defaults`);
* ``chaos.call(fn, ...)`` / ``await chaos.acall(fn, ...)`` make one call, recording when it began
  and ended and what it returned or raised (:class:`chaos.call_trace.Call`).

Minutes of outage run in milliseconds. Imports nothing beyond the library's own dependencies.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, TypeVar

from .call_trace import Call, CallTrace
from .clock import VirtualClock, VirtualTimeLoop
from .faults import FaultModelError, ProviderFaults
from .runtime_defaults import virtual_defaults
from .trace import Sent
from .transport import FakeProvider, make_clients, make_transports, sdk_http_module

T = TypeVar("T")

#: The providers a fake client can stand for.
PROVIDERS: Final = ("openai", "azure")

#: The call (index in ``CallTrace.calls``) being made in this context, for the trace.
_current_call: contextvars.ContextVar[int] = contextvars.ContextVar("chaos_call", default=-1)


class _ClockLoop(VirtualTimeLoop):
    """A virtual-time event loop whose time is a :class:`VirtualClock` (shared with sync code)."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        super().__init__()

    @property
    def _virtual_now(self) -> float:
        return self._clock.now

    @_virtual_now.setter
    def _virtual_now(self, when: float) -> None:
        self._clock.advance_to(when)


class _TracedProvider(FakeProvider):
    """The fake provider, recording each request under the call being made (``chaos.call``)."""

    def __init__(
        self,
        faults: Mapping[str, ProviderFaults],
        seed: int,
        trace: CallTrace,
        clock: Callable[[], float],
    ) -> None:
        super().__init__(faults, seed, trace.raw, clock)
        self.calls = trace.calls

    def record(self, sent: Sent, provider: str, start: float, outcome: Any) -> None:
        super().record(sent, provider, start, outcome)
        if sent.request >= 0:
            self.calls[sent.request].requests.append(self.trace.http[-1])

    def decide(
        self, provider: str, path: str, headers: Mapping[str, str], raw_body: bytes, timeout: float
    ) -> tuple[Any, Sent]:
        outcome, sent = super().decide(provider, path, headers, raw_body, timeout)
        return outcome, sent._replace(request=_current_call.get())


def load_faults(faults: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, ProviderFaults]:
    """Fault models by model key, from a dict or from a scenario file (``.json``/``.toml``).

    A dict maps ``"<provider>/<model>"`` to its fault model (the ``providers`` entries of a
    scenario file, see chaos/README.md; ``{}`` is a healthy provider). A file is a scenario (its
    ``providers`` table is used, the rest ignored) or just such a table.
    """
    if isinstance(faults, str | os.PathLike):
        raw = _read_file(Path(faults))
        source = f"{os.fspath(faults)}: "
        if isinstance(raw, Mapping) and "providers" in raw:
            raw = raw["providers"]
    else:
        raw, source = faults, ""
    if not isinstance(raw, Mapping) or not raw:
        raise FaultModelError(
            f"{source}the fault model is a non-empty dict of '<provider>/<model>' -> faults, e.g. "
            '{"openai/gpt-4o": {"outages": [{"start": 0, "end": 600, "status": "503"}]}, '
            '"azure/gpt-4o": {}} (an empty dict is a healthy provider).'
        )
    models: dict[str, ProviderFaults] = {}
    for key, value in raw.items():
        provider, _, model = str(key).partition("/")
        if provider not in PROVIDERS or not model:
            raise FaultModelError(
                f"{source}{key!r} is not a model key: name it '<provider>/<model>' with provider "
                f"one of {list(PROVIDERS)}, e.g. 'openai/gpt-4o', as in the init call's models."
            )
        try:
            models[key] = (
                value if isinstance(value, ProviderFaults) else ProviderFaults.parse(key, value)
            )
        except FaultModelError as exc:
            raise FaultModelError(f"{source}{exc}") from None
    return models


def _read_file(path: Path) -> object:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultModelError(f"{path}: cannot read the fault model ({exc.strerror}).") from None
    if path.suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise FaultModelError(
                f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}."
            ) from None
    if path.suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib

            try:
                return tomllib.loads(text)
            except tomllib.TOMLDecodeError as exc:
                raise FaultModelError(f"{path}: not valid TOML: {exc}.") from None
        raise FaultModelError(f"{path}: TOML needs Python 3.11 or later; use JSON.")
    raise FaultModelError(f"{path}: a fault model file ends in .json or .toml.")


class FakeClients:
    """SDK clients whose HTTP goes to the fake providers (made on first use, one of each)."""

    def __init__(self, chaos: Chaos, models: Mapping[str, ProviderFaults], seed: int) -> None:
        self._chaos = chaos
        self.models = dict(models)
        self.provider = _TracedProvider(self.models, seed, chaos.trace, chaos.clock.time)
        self._http = sdk_http_module()
        self._transports = make_transports(self._http)
        self._made: dict[tuple[str, bool], Any] = {}

    def _client(self, provider: str, is_async: bool) -> Any:
        made = self._made.get((provider, is_async))
        if made is None:
            sync_cls, async_cls = self._transports
            fake, chaos = self.provider, self._chaos

            if is_async:

                class Transport(async_cls):  # type: ignore[misc,valid-type]
                    async def handle_async_request(self, request: Any) -> Any:
                        chaos._check_loop()
                        return await super().handle_async_request(request)

                def transport_for(p: str) -> Any:
                    return Transport(fake, p)
            else:

                def transport_for(p: str) -> Any:
                    return sync_cls(fake, p, chaos.clock.advance)

            [made] = make_clients(
                {provider}, is_async=is_async, transport_for=transport_for, http=self._http
            )
            self._made[provider, is_async] = made
        return made

    @property
    def openai(self) -> Any:
        """An ``openai.OpenAI`` client served by the fake ``openai/...`` models."""
        return self._client("openai", False)

    @property
    def azure(self) -> Any:
        """An ``openai.AzureOpenAI`` client served by the fake ``azure/...`` models."""
        return self._client("azure", False)

    @property
    def async_openai(self) -> Any:
        """An ``openai.AsyncOpenAI`` client (use it inside ``chaos.run(...)``)."""
        return self._client("openai", True)

    @property
    def async_azure(self) -> Any:
        """An ``openai.AsyncAzureOpenAI`` client (use it inside ``chaos.run(...)``)."""
        return self._client("azure", True)

    @property
    def clients(self) -> list[Any]:
        """The sync clients of every provider in the fault model."""
        return [self._client(p, False) for p in self._providers()]

    @property
    def async_clients(self) -> list[Any]:
        """The async clients of every provider in the fault model."""
        return [self._client(p, True) for p in self._providers()]

    def _providers(self) -> list[str]:
        return [p for p in PROVIDERS if any(k.split("/", 1)[0] == p for k in self.models)]

    def close(self) -> None:
        for (_, is_async), client in self._made.items():
            if is_async:
                loop = _ClockLoop(VirtualClock())
                try:
                    loop.run_until_complete(client.close())
                finally:
                    loop.close()
            else:
                client.close()


class Chaos:
    """What the ``chaos`` fixture gives a test. See the module's documentation."""

    def __init__(self, seed: int = 0) -> None:
        #: The test's virtual time (seconds since the test began).
        self.clock = VirtualClock()
        self.trace = CallTrace()
        self.seed = seed
        self._fake: FakeClients | None = None
        self._loop: _ClockLoop | None = None
        self._problems: list[str] = []

    @classmethod
    @contextlib.contextmanager
    def active(cls, seed: int = 0) -> Iterator[Chaos]:
        """A :class:`Chaos` whose virtual time the runtime uses until the block ends."""
        from .drivers import sdk_sleep_on

        chaos = cls(seed)
        try:
            with (
                virtual_defaults(
                    clock=chaos.clock.time,
                    sleep=chaos.clock.sleep,
                    seed=lambda: chaos.seed,
                    observer=chaos._observe,
                ),
                sdk_sleep_on(chaos.clock),
            ):
                yield chaos
        finally:
            if chaos._fake is not None:
                chaos._fake.close()

    # -- the fake providers ----------------------------------------------------------------
    def providers(
        self, faults: Mapping[str, Any] | str | os.PathLike[str], *, seed: int | None = None
    ) -> FakeClients:
        """Fake providers with ``faults`` (a dict, or the path of a scenario file): their clients.

        ``seed`` (default: the fixture's, 0) fixes the faults drawn and the runtime's weighted
        draws, so the test replays exactly.
        """
        if self._fake is not None:
            raise RuntimeError(
                "chaos.providers(...) was already called in this test: one fault model per test "
                "(put every model in the one dict)."
            )
        if seed is not None:
            self.seed = seed
        self._fake = FakeClients(self, load_faults(faults), self.seed)
        return self._fake

    # -- time ------------------------------------------------------------------------------
    def now(self) -> float:
        """Virtual seconds since the test began."""
        return self.clock.now

    def sleep(self, seconds: float) -> None:
        """Let ``seconds`` of virtual time pass (e.g. between two calls)."""
        self.clock.advance(seconds)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` to its end on an event loop on the test's virtual time; return its result.

        Async fake clients work only inside it: every ``asyncio.sleep``/``anyio.sleep`` (the
        runtime's backoff, the fake latency) passes without waiting.
        """
        if not inspect.iscoroutine(coro):
            raise TypeError(
                f"chaos.run(...) takes a coroutine, got {type(coro).__name__}: call the async "
                "function inside it, e.g. chaos.run(main()) or "
                "chaos.run(chaos.acall(fn, *args))."
            )
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coro.close()
            raise RuntimeError(
                "chaos.run(...) was called while an event loop is running (an async test, or "
                "inside chaos.run itself): it runs its own virtual-time loop. Make the test a "
                "plain `def test_...(chaos)` and run the async code as chaos.run(main()); inside "
                "it, await chaos.acall(fn, *args) directly."
            )
        loop = _ClockLoop(self.clock)
        self._loop = loop
        try:  # (not made the thread's current loop: a test's own loop setup stays as it was)
            result: T = loop.run_until_complete(coro)
            loop.run_until_complete(loop.shutdown_asyncgens())
            return result
        finally:
            self._loop = None
            loop.close()

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            message = (
                "an async fake client was used outside chaos.run(...): its latencies and the "
                "runtime's waits are virtual only on that loop. Run the test's async code as "
                "chaos.run(main())."
            )
            if message not in self._problems:
                self._problems.append(message)
            raise RuntimeError(message)

    # -- calls -----------------------------------------------------------------------------
    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T | None:
        """``fn(*args, **kwargs)``, recorded as one call; returns its value, or None if it raised
        (the exception is recorded, not raised: see ``chaos.trace``)."""
        call = self._begin()
        token = _current_call.set(call.index)
        try:
            call.value = fn(*args, **kwargs)
        except Exception as exc:
            call.error = exc
        finally:
            _current_call.reset(token)
            call.finished = self.clock.now
        if inspect.isawaitable(call.value):
            self.trace.calls.pop()  # not a call that happened: nothing was awaited
            if inspect.iscoroutine(call.value):
                call.value.close()  # no "never awaited" warning on top of this error
            raise TypeError(
                f"chaos.call({getattr(fn, '__qualname__', fn)!r}, ...) returned an awaitable: "
                "for an async function use chaos.run(chaos.acall(fn, *args)), or "
                "`await chaos.acall(fn, *args)` inside chaos.run(...)."
            )
        return call.value  # type: ignore[no-any-return]

    async def acall(
        self, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> T | None:
        """``await fn(*args, **kwargs)``, recorded as one call (inside ``chaos.run``)."""
        call = self._begin()
        token = _current_call.set(call.index)
        try:
            call.value = await fn(*args, **kwargs)
        except Exception as exc:
            call.error = exc
        finally:
            _current_call.reset(token)
            call.finished = self.clock.now
        return call.value  # type: ignore[no-any-return]

    def _begin(self) -> Call:
        call = Call(len(self.trace.calls), self.clock.now)
        self.trace.calls.append(call)
        return call

    def _observe(self, event: Any) -> None:
        """The runtime's observer: an ``AttemptEvent``, or a breaker's ``BreakerTransition``."""
        if not hasattr(event, "call_id"):
            self.trace.transitions.append(event)
            return
        self.trace.attempts.append(event)
        index = _current_call.get()
        if index >= 0:
            self.trace.calls[index].attempts.append(event)

    # -- the end of the test ---------------------------------------------------------------
    def problems(self) -> list[str]:
        """Mistakes in the test's setup found while it ran (reported when the fixture ends)."""
        problems = list(self._problems)
        if self._fake is not None:
            unknown = sorted({r.key for r in self.trace.http if r.source == "unknown-model"})
            if unknown:
                problems.append(
                    f"requests for {unknown}, which the fault model does not describe (they were "
                    f"answered 400). Add them to the dict given to chaos.providers, e.g. "
                    f"{{{unknown[0]!r}: {{}}}} for a healthy provider; the fault model has "
                    f"{sorted(self._fake.models)}."
                )
        return problems
