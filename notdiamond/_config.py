"""Parse and validate what ``notdiamond.init`` is given, before anything is patched.

Every refusal names the bad value and the fix. Nothing here touches a client.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from ._hints import near_miss
from ._numbers import MAX_WAIT, describe, real_number, whole_number
from ._sdk import PROVIDERS, Provider
from ._types import Message

logger = logging.getLogger("notdiamond")

DEFAULT_MAX_RETRIES = 1
DEFAULT_TIMEOUT = 60.0
DEFAULT_BACKOFF = 2.0
#: Roles that may open a conversation, so may open ``model_messages``.
OPENING_ROLES = frozenset({"system", "developer", "user"})

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ModelKey:
    """``<provider>/<model>``: the provider is the text before the first ``/``, the model the rest."""

    provider: Provider
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass(frozen=True, slots=True)
class ModelSettings:
    """Everything one configured model needs at call time."""

    key: str
    provider: Provider
    model: str
    max_attempts: int
    timeout: float
    backoff: float
    messages: tuple[Message, ...]


@dataclass(frozen=True, slots=True)
class Config:
    """A validated configuration: models in priority order, optional weights, per-model settings."""

    order: tuple[str, ...]
    weights: tuple[float, ...] | None
    settings: Mapping[str, ModelSettings]


def check_key_form(text: object, *, where: str) -> str:
    """Return ``text`` if it has the form ``<provider>/<model>``, else raise showing that form."""
    if not isinstance(text, str):
        raise TypeError(
            f"{where}: model keys are strings of the form '<provider>/<model>', "
            f"got {text!r} ({type(text).__name__})."
        )
    provider, sep, model = text.partition("/")
    if not sep or not provider or not model:
        raise ValueError(
            f"{where}: {text!r} is not a model key. Use the full form '<provider>/<model>'"
            f"{_key_form_hint(text)}."
        )
    return text


#: Characters a key may have been written with instead of ``/`` after a provider name.
_WRONG_SEPARATORS = (":", "\\", "|", ".", " ")


def _key_form_hint(text: str) -> str:
    """A suggestion for text that is not ``<provider>/<model>``, or ``""`` when none is sure."""
    if not text or "/" in text:  # "openai/" or "/gpt-4o": nothing to guess
        return ""
    for sep in _WRONG_SEPARATORS:
        head, found, rest = text.partition(sep)
        provider = _provider_meant(head)
        if found and rest and provider is not None:
            return f", here {f'{provider}/{rest}'!r}"  # "openai:gpt-4o" -> "openai/gpt-4o"
    return f" such as 'openai/{text}' or 'azure/{text}'"


def _provider_meant(name: str) -> Provider | None:
    """The supported provider ``name`` stands for: itself, in other case, or one typo away."""
    folded = name.strip().lower()
    if folded in PROVIDERS:
        return folded
    return near_miss(folded, PROVIDERS)  # type: ignore[return-value]


def parse_model_key(text: object, *, where: str) -> ModelKey:
    """Parse ``<provider>/<model>`` for a supported provider, or raise naming the fix."""
    provider, _, model = check_key_form(text, where=where).partition("/")
    if provider not in PROVIDERS:
        meant = _provider_meant(provider)
        fix = (
            f"Did you mean {f'{meant}/{model}'!r}?"
            if meant is not None
            else "Keys name the client that serves the model: 'openai/...' for OpenAI clients "
            "(also OpenAI-compatible servers reached with base_url=), 'azure/...' for "
            "AzureOpenAI clients."
        )
        raise ValueError(
            f"{where}: {text!r} names provider {provider!r}; notdiamond supports "
            f"{' and '.join(repr(p) for p in PROVIDERS)}. {fix}"
        )
    return ModelKey(provider, model)


def parse_models(models: object) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
    """``models`` as a priority list or a dict of weights -> (order, weights or None)."""
    if isinstance(models, Mapping):
        if not models:
            raise ValueError("models: the dict is empty. Give at least one '<provider>/<model>'.")
        order: list[str] = []
        weights: list[float] = []
        for key, weight in models.items():
            order.append(str(parse_model_key(key, where="models")))
            weights.append(_weight(key, weight))
        if not any(w > 0 for w in weights):
            raise ValueError(
                "models: every weight is 0, so no model could ever be chosen. "
                "Give at least one model a weight above 0."
            )
        return tuple(order), tuple(weights)
    if isinstance(models, str) or not isinstance(models, Sequence):
        raise TypeError(
            "models must be a list of '<provider>/<model>' keys in priority order, or a dict "
            f"mapping keys to weights; got {type(models).__name__}"
            + (f" {models!r}. Wrap it in a list: [{models!r}]." if isinstance(models, str) else ".")
        )
    if not models:
        raise ValueError("models: the list is empty. Give at least one '<provider>/<model>'.")
    keys = [str(parse_model_key(key, where="models")) for key in models]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"models: {duplicates} listed more than once. List each model once.")
    return tuple(keys), None


def _weight(key: str, weight: object) -> float:
    where = f"models[{key!r}]"
    value = real_number(weight, where=where, expected="the weight must be a number")
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"{where}: weight {describe(weight)} is not allowed. Weights are finite numbers >= 0 "
            "(0 turns a model off, also as a fallback)."
        )
    return value


class PerModel(Generic[T]):
    """One per-model setting: a scalar for every model, or a dict of model key -> value."""

    def __init__(
        self,
        name: str,
        raw: object,
        default: T,
        check: Callable[[str, object], T],
        configured: Sequence[str],
    ) -> None:
        self.name = name
        self.default = default
        self.values: dict[str, T] = {}
        if isinstance(raw, Mapping) and "role" in raw:
            raise TypeError(
                f"{name}: {dict(raw)!r} looks like a single message. Give a list of messages "
                "for every model, or a dict mapping '<provider>/<model>' keys to message lists."
            )
        if isinstance(raw, Mapping):
            for key, value in raw.items():
                canonical = check_key_form(key, where=name)
                if canonical not in configured:
                    _refuse_typo(name, canonical, configured, raw)
                    logger.warning(
                        "init: %s has an entry for %r, which is not among the "
                        "configured models %s; it is ignored.",
                        name,
                        canonical,
                        list(configured),
                    )
                    continue
                self.values[canonical] = check(f"{name}[{key!r}]", value)
        else:
            shared = check(name, raw)
            self.values = {key: shared for key in configured}

    def __getitem__(self, key: str) -> T:
        return self.values.get(key, self.default)


def _refuse_typo(
    name: str, key: str, configured: Sequence[str], entries: Mapping[object, object]
) -> None:
    """Refuse ``key`` when it is one typo away from a configured model that has no entry, or
    the same key in other case (``OpenAI/gpt-4o``)."""
    missing = [k for k in configured if k not in entries]
    meant = near_miss(key, missing)
    apart = "one character apart"
    if meant is None:
        meant = next((k for k in missing if k.casefold() == key.casefold()), None)
        apart = "the same in other case"
    if meant is not None:
        raise ValueError(
            f"{name}: {key!r} is not a configured model, but {meant!r} is, {apart}. "
            f"Did you mean {meant!r}? (If {key!r} is meant for another init, add an "
            f"entry for {meant!r} too, and this one is ignored with a warning.)"
        )


def _check_max_retries(where: str, value: object) -> int:
    value = whole_number(
        value,
        where=where,
        expected="a whole number of attempts >= 1 (1 means one try, then fall back)",
    )
    if value < 1:
        raise ValueError(
            f"{where}: {describe(value)} attempts would never call the model. Use 1 or more "
            "(it counts attempts on one model: 1 is a single try, 3 is up to three)."
        )
    return value


def _check_timeout(where: str, value: object) -> float:
    seconds = real_number(value, where=where, expected="seconds per attempt as a number")
    if not math.isfinite(seconds) or not 0 < seconds <= MAX_WAIT:
        raise ValueError(
            f"{where}: {describe(value)} is not a usable timeout. Use a finite number of "
            f"seconds > 0 (and at most {MAX_WAIT:g})."
        )
    return seconds


def _check_backoff(where: str, value: object) -> float:
    base = real_number(value, where=where, expected="a backoff base as a number")
    if not math.isfinite(base) or base < 0:
        raise ValueError(
            f"{where}: {describe(value)} is not a usable backoff. Use a finite number >= 0 "
            "(the wait after the k-th failure is backoff ** k seconds)."
        )
    return base


def longest_wait_fits(backoff: float, max_attempts: int) -> bool:
    """``backoff ** (max_attempts - 1)``, the longest backoff wait of a model, is at most MAX_WAIT.

    Holds for any attempt count, even one beyond a float (the power then overflows: too long).
    """
    if max_attempts <= 1 or backoff <= 1:
        return True  # no wait at all, or none longer than a second
    try:
        return bool(backoff ** (max_attempts - 1) <= MAX_WAIT)
    except OverflowError:
        return False


def _check_schedule(key: str, backoff: float, max_attempts: int) -> None:
    if longest_wait_fits(backoff, max_attempts):
        return
    if backoff > MAX_WAIT:
        fix = f"Use a backoff of at most {MAX_WAIT:g}, or max_retries=1 (no wait at all)"
    else:
        most = 1 + math.floor(math.log(MAX_WAIT) / math.log(backoff))
        while not longest_wait_fits(backoff, most):  # floating-point rounding of the logarithms
            most -= 1
        while longest_wait_fits(backoff, most + 1):
            most += 1
        fix = f"Use max_retries <= {most} with this backoff, or a smaller backoff"
    raise ValueError(
        f"backoff[{key!r}]: backoff {backoff:g} with max_retries={describe(max_attempts)} "
        f"would wait backoff ** {describe(max_attempts - 1)} seconds before the last attempt, "
        f"beyond the longest single wait notdiamond takes ({MAX_WAIT:g} s, about 31 years). "
        f"{fix}."
    )


def _check_messages(where: str, value: object) -> tuple[Message, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise TypeError(
            f"{where}: expected a list of messages like "
            f'[{{"role": "system", "content": "..."}}], got {type(value).__name__}.'
        )
    for i, message in enumerate(value):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise TypeError(
                f"{where}[{i}]: each message is a dict with a 'role' string, such as "
                f'{{"role": "system", "content": "..."}}.'
            )
    if value and value[0]["role"] not in OPENING_ROLES:
        raise ValueError(
            f"{where}: the first message has role {value[0]['role']!r}, which cannot open a "
            f"conversation. Start with one of {sorted(OPENING_ROLES)}."
        )
    return tuple(value)


def parse_config(
    models: object,
    *,
    max_retries: object,
    timeout: object,
    backoff: object,
    model_messages: object,
    available_providers: frozenset[Provider],
) -> Config:
    """Validate everything ``init`` was given about models; raise before anything is patched."""
    order, weights = parse_models(models)
    retries = PerModel("max_retries", max_retries, DEFAULT_MAX_RETRIES, _check_max_retries, order)
    timeouts = PerModel("timeout", timeout, DEFAULT_TIMEOUT, _check_timeout, order)
    backoffs = PerModel("backoff", backoff, DEFAULT_BACKOFF, _check_backoff, order)
    messages = PerModel[tuple[Message, ...]](
        "model_messages",
        {} if model_messages is None else model_messages,
        (),
        _check_messages,
        order,
    )

    settings: dict[str, ModelSettings] = {}
    for key in order:
        parsed = parse_model_key(key, where="models")
        if parsed.provider not in available_providers:
            raise ValueError(
                f"models: {key!r} needs a {parsed.provider!r} client, but none was passed. "
                f"Add an {'AzureOpenAI' if parsed.provider == 'azure' else 'OpenAI'} client "
                "(async clients: the Async variant) to the client list, or remove the model."
            )
        _check_schedule(key, backoffs[key], retries[key])
        settings[key] = ModelSettings(
            key=key,
            provider=parsed.provider,
            model=parsed.model,
            max_attempts=retries[key],
            timeout=timeouts[key],
            backoff=backoffs[key],
            messages=messages[key],
        )
    return Config(order=order, weights=weights, settings=settings)
