"""``--init MODULE:FUNCTION``: capture an application's own ``notdiamond.init`` configuration, and
rebuild it against the harness's fake providers.

Capture: the harness imports the application's module (the current directory first on
``sys.path``, as ``python -m`` does) and calls its setup function with ``notdiamond.init`` replaced
by a recorder that calls the real ``init`` and keeps its exact arguments and the manager it
returned. The setup function must return that manager. The harness relies only on public names:
``notdiamond.init``, ``notdiamond.RetryManager``, the option objects (``CircuitBreaker``,
``RetryBudget``, ``Hedge``) and the OpenAI SDK's client classes. Every manager built during
setup is closed at once; the application's clients never send a request.

Rebuild: the configuration becomes a scenario's ``config`` (the keys a scenario file takes, see
``chaos/README.md``), so the drivers build fresh SDK clients of the same kinds (OpenAI/Azure,
sync/async) over the in-process fake transport and call ``notdiamond.init`` with it, the harness's
seed, virtual clock and sleep, and its observer. Options that would reach outside the process or
that the harness must own are replaced, and the report says so (:attr:`Captured.replaced`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

from .monkeypatch import swapped

#: The arguments of ``init`` that map one to one onto a scenario's ``config``.
_CONFIG_ARGUMENTS: Final = (
    "models",
    "max_retries",
    "timeout",
    "backoff",
    "model_messages",
    "retry_after_cap",
    "jitter",
    "first_chunk_timeout",
    "deadline",
)
#: What the harness does with the other ``init`` arguments (text for the report).
_REPLACED: Final = {
    "api_key": "not used (nothing is sent to Not Diamond; the key is never read or shown)",
    "async_mode": "informational in init too: the clients' own type decides",
    "seed": "replaced by the harness's seed (--seed), so a run replays exactly",
    "clock": "replaced by the harness's virtual clock",
    "sleep": "replaced by the harness's virtual sleep",
    "observer": "not called: the harness installs its own observer to record every attempt",
    "state": "replaced by in-process memory: no shared store (e.g. Redis) is contacted",
}


class SetupError(Exception):
    """The ``--init`` target cannot be used; the message names the fix."""


@dataclass(frozen=True)
class ClientInfo:
    """What the harness learnt about one client the application passed to ``init``."""

    #: ``openai`` or ``azure``.
    provider: str
    #: The SDK class, e.g. ``AsyncAzureOpenAI``.
    kind: str
    is_async: bool
    #: The host the client would have talked to (never contacted by the harness).
    host: str
    #: The client's own ``max_retries`` (the SDK's retries, used only with ``sdk_retries=True``).
    sdk_max_retries: int | None = None

    def describe(self) -> str:
        return f"{self.kind} ({self.provider}, {'async' if self.is_async else 'sync'}, {self.host})"


@dataclass
class Captured:
    """The configuration an application's setup built, in the harness's terms."""

    #: ``MODULE:FUNCTION`` as given.
    target: str
    clients: list[ClientInfo]
    #: A scenario's ``config``: what ``init`` received besides the clients (objects as plain data).
    config: dict[str, Any]
    #: ``init`` arguments the harness passes as extra keyword arguments (``sdk_retries``).
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``init`` arguments the application gave that the run replaces, and how.
    replaced: dict[str, str] = field(default_factory=dict)

    @property
    def is_async(self) -> bool:
        return any(c.is_async for c in self.clients)

    @property
    def mode(self) -> str:
        return "async" if self.is_async else "sync"

    @property
    def weighted(self) -> bool:
        return isinstance(self.config["models"], Mapping)

    @property
    def order(self) -> list[str]:
        return [str(k) for k in self.config["models"]]

    def positive_models(self) -> list[str]:
        """The models a call can be sent to (a weight-0 model never is)."""
        models = self.config["models"]
        if isinstance(models, Mapping):
            return [str(k) for k, w in models.items() if float(w) > 0]
        return [str(k) for k in models]

    def primary(self) -> str:
        """The first model of a priority list; the heaviest of a weighted dict."""
        models = self.config["models"]
        if isinstance(models, Mapping):
            return str(max(models, key=lambda k: float(models[k])))
        return str(models[0])

    def public_config(self) -> dict[str, Any]:
        """The configuration as the report shows it: ``model_messages`` reduced to counts (no
        message content in a report)."""
        out = dict(self.config)
        messages = out.get("model_messages")
        if messages is not None:
            if isinstance(messages, Mapping):
                out["model_messages"] = {
                    str(k): f"{len(v)} message(s)" for k, v in messages.items()
                }
            else:
                out["model_messages"] = f"{len(messages)} message(s) for every model"
        return {**out, **self.extra}


# -- loading the setup function --------------------------------------------------------------
def load_setup(target: str) -> Callable[[], Any]:
    """The function ``MODULE:FUNCTION`` names, imported with the current directory on
    ``sys.path`` (as ``python -m`` has it)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise SetupError(
            f"--init {target!r}: give MODULE:FUNCTION, the function your application runs to "
            "build its clients and call notdiamond.init, e.g. --init myapp.llm:setup."
        )
    if module_name.endswith(".py") or module_name.startswith(".") or "/" in module_name:
        dotted = module_name.removesuffix(".py").lstrip("./")
        dotted = dotted.replace("/", ".")
        raise SetupError(
            f"--init {target!r}: MODULE is the module's import name, not a file path: run from "
            f"the directory that holds your package and give --init {dotted}:{attr}."
        )
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module_name.startswith(exc.name):
            raise SetupError(
                f"--init {target!r}: no module {exc.name!r} importable from {cwd}. Run the "
                "harness from the directory that contains your package (it is put first on "
                "sys.path), or add that directory to PYTHONPATH."
            ) from None
        raise SetupError(_raised(target, "importing its module", exc)) from exc
    except Exception as exc:
        raise SetupError(_raised(target, "importing its module", exc)) from exc
    function = module
    for part in attr.split("."):
        if not hasattr(function, part):
            raise SetupError(
                f"--init {target!r}: module {module_name!r} has no {attr!r}. Name the function "
                "that builds your clients and returns what notdiamond.init returned."
            )
        function = getattr(function, part)
    if not callable(function):
        raise SetupError(
            f"--init {target!r}: {attr!r} is a {type(function).__name__}, not a function. Name "
            "the function that builds your clients and returns what notdiamond.init returned."
        )
    return function


def _raised(target: str, doing: str, exc: BaseException) -> str:
    trace = "".join(traceback.format_exception(exc)).rstrip()
    return (
        f"--init {target!r} raised {type(exc).__name__} while {doing}: {exc}\n{trace}\n"
        "The harness runs your setup as your application does at start-up: fix the error above, "
        "or point --init at a function that only builds the clients and calls notdiamond.init."
    )


# -- capture ---------------------------------------------------------------------------------
@dataclass
class _InitCall:
    arguments: dict[str, Any]
    manager: Any


@contextmanager
def _recording_init() -> Iterator[list[_InitCall]]:
    """Replace ``notdiamond.init`` by a recorder for the block (also what ``from notdiamond import
    init`` binds in a module imported inside it)."""
    import notdiamond

    real = notdiamond.init
    signature = inspect.signature(real)
    calls: list[_InitCall] = []
    recording = [True]

    def init(*args: Any, **kwargs: Any) -> Any:
        manager = real(*args, **kwargs)  # the real validation: a refusal propagates unchanged
        if recording[0]:  # after the block, a module's own `init` name is the real init
            bound = signature.bind(*args, **kwargs)
            arguments = dict(bound.arguments)
            arguments.update(arguments.pop("options", {}))
            calls.append(_InitCall(arguments, manager))
        return manager

    init.__doc__ = real.__doc__
    try:
        with swapped(notdiamond, "init", init):
            yield calls
    finally:
        recording[0] = False


def capture(target: str) -> Captured:
    """Import and run ``target`` (``MODULE:FUNCTION``), close the managers it built, and return the
    configuration of the one it returned. :class:`SetupError` names the fix when it cannot.

    The recorder is in place while the module is imported too: a manager its module builds at
    import time and the function returns is the application's configuration as well."""
    import notdiamond

    with _recording_init() as calls:
        try:
            setup = load_setup(target)
            try:
                result = setup()
                if inspect.isawaitable(result):  # ``async def setup()``
                    result = asyncio.run(_awaited(result))
            except Exception as exc:
                raise SetupError(_raised(target, "running", exc)) from exc
        finally:  # every manager built here, also when the import or the function failed
            _close_all(calls)
    if not isinstance(result, notdiamond.RetryManager):
        raise SetupError(
            f"--init {target!r} returned {_kind(result)}, not a notdiamond.RetryManager. End the "
            "function with `return notdiamond.init(...)` (or return the manager init returned)."
        )
    matches = [c for c in calls if c.manager is result]
    if not matches:
        result.close()
        raise SetupError(
            f"--init {target!r} returned a RetryManager that notdiamond.init did not build while "
            "the harness imported and ran it (it was built before, or directly as "
            "RetryManager(...)). Call notdiamond.init(...) inside the function and return its "
            "result."
        )
    return _from_arguments(target, matches[-1].arguments)


async def _awaited(result: Any) -> Any:
    return await result


def _kind(value: object) -> str:
    return "None" if value is None else f"a {type(value).__name__}"


def _close_all(calls: list[_InitCall]) -> None:
    for call in calls:
        call.manager.close()


def _from_arguments(target: str, arguments: Mapping[str, Any]) -> Captured:
    """The harness's view of one ``init`` call's arguments."""
    clients_arg = arguments["client"]
    clients = list(clients_arg) if isinstance(clients_arg, list | tuple) else [clients_arg]
    infos = [client_info(c) for c in clients]
    config: dict[str, Any] = {}
    for name in _CONFIG_ARGUMENTS:
        if name in arguments and arguments[name] is not None:
            config[name] = plain(arguments[name])
    models = config["models"]
    if not isinstance(models, Mapping):
        config["models"] = list(models)
    for name in ("circuit_breaker", "retry_budget"):
        value = arguments.get(name)
        if value is not None and value is not False:
            config[name] = True if value is True else option_fields(value)
    hedge = arguments.get("hedge")
    if hedge is not None and hedge is not False:  # True: notdiamond.Hedge()'s defaults
        config["hedge"] = {} if hedge is True else option_fields(hedge)
    extra = {}
    if arguments.get("sdk_retries"):
        extra["sdk_retries"] = True
    replaced = {
        name: why
        for name, why in _REPLACED.items()
        if arguments.get(name) is not None and not (name == "async_mode" and not arguments[name])
    }
    return Captured(target, infos, config, extra, replaced)


def option_fields(value: Any) -> dict[str, Any]:
    """An option object (``CircuitBreaker``, ``RetryBudget``, ``Hedge``) as the keyword arguments
    that rebuild it."""
    return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}


def plain(value: Any) -> Any:
    """Numbers, strings and containers as plain Python data (numpy numbers included)."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    item = getattr(value, "item", None)  # numpy scalars
    return item() if callable(item) else value


def client_info(client: Any) -> ClientInfo:
    """Provider, SDK class, sync/async and host of one client (the SDK's public classes)."""
    import openai

    is_async = isinstance(client, openai.AsyncOpenAI)
    azure = isinstance(client, openai.AzureOpenAI | openai.AsyncAzureOpenAI)
    base_url = getattr(client, "base_url", "")
    host = urlsplit(str(base_url)).hostname or "?"
    retries = getattr(client, "max_retries", None)
    return ClientInfo(
        "azure" if azure else "openai",
        type(client).__name__,
        is_async,
        host,
        retries if isinstance(retries, int) else None,
    )


@contextmanager
def sdk_retries_as_captured(captured: Captured) -> Iterator[None]:
    """With ``sdk_retries=True``, give the fake clients the ``max_retries`` of the application's
    clients of the same provider (the SDK's own retries then happen as in the application)."""
    if not captured.extra.get("sdk_retries"):
        yield
        return
    from . import drivers
    from .transport import make_clients as original

    retries = {c.provider: c.sdk_max_retries for c in captured.clients}

    def make_clients(providers: set[str], **kwargs: Any) -> list[Any]:
        clients = original(providers, **kwargs)
        for client in clients:
            provider = client_info(client).provider
            if retries.get(provider) is not None:
                client.max_retries = retries[provider]
        return clients

    with swapped(drivers, "make_clients", make_clients):
        yield
