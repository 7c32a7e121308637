"""What the fault rates and the policy predict: the orders a request may try the models in, and
the chance that it gets an answer."""

from __future__ import annotations

import itertools

from ..scenario import Scenario


def model_orderings(s: Scenario) -> list[tuple[float, tuple[str, ...]]]:
    """Every order in which a request may try the models, with its probability."""
    first = s.first_key()
    if s.weights is None:
        order = [first] if first is not None else []
        while len(order) < len(s.order):
            order.append(next(k for k in s.order if k not in order))
        return [(1.0, tuple(order))]
    weights = {k: w for k, w in zip(s.order, s.weights, strict=True) if w > 0}
    out = []
    keys = list(weights)
    start = [first] if first is not None else []
    rest_keys = [k for k in keys if k not in start]
    for perm in itertools.permutations(rest_keys):
        prob = 1.0
        left = dict((k, weights[k]) for k in rest_keys)
        for k in perm:
            prob *= left[k] / sum(left.values())
            del left[k]
        out.append((prob, (*start, *perm)))
    return out


def model_success(s: Scenario) -> dict[str, float]:
    """Per model: P(a request that reaches it gets an answer from it), before stream cuts.

    ``(1 - t - q) * sum(t**k for k < max_attempts)`` with ``t`` the chance of a transient failure
    (timeouts from the latency distribution included) and ``q`` that of one that leaves the model.
    """
    cap = s.retry_after_cap
    out = {}
    for key in s.order:
        t, q = s.providers[key].p_attempt(s.timeouts[key], cap)
        out[key] = (1 - t - q) * sum(t**k for k in range(s.max_attempts[key]))
    return out


def predicted_success(s: Scenario) -> float:
    """P(a request gets a complete answer), from the fault rates and the policy.

    Per model: :func:`model_success`; a streamed answer must also not be cut. Over models: every
    order the selection can take, weighted by its probability (independent faults).
    """
    succ = model_success(s)
    complete: dict[str, float] = {}
    for key in s.order:
        f = s.providers[key]
        cut = f.stream_cut.probability if f.stream_cut is not None else 0.0
        complete[key] = 1 - s.traffic.stream * cut
    total = 0.0
    for prob, order in model_orderings(s):
        reach = 1.0
        p = 0.0
        for key in order:
            p += reach * succ[key] * complete[key]
            reach *= 1 - succ[key]
        total += prob * p
    return total


def predicted_all_fail(s: Scenario) -> float:
    """P(every model a request may try fails: the caller receives an error)."""
    succ = model_success(s)
    total = 0.0
    for prob, order in model_orderings(s):
        reach = 1.0
        for key in order:
            reach *= 1 - succ[key]
        total += prob * reach
    return total


def predicted_fallbacks(s: Scenario) -> float:
    """Expected fallbacks (model changes) per request."""
    succ = model_success(s)
    total = 0.0
    for prob, order in model_orderings(s):
        reach = 1.0
        for key in order[:-1]:
            reach *= 1 - succ[key]
            total += prob * reach
    return total


def predicted_retries(s: Scenario) -> float:
    """Expected same-model retries per request."""
    cap = s.retry_after_cap
    per: dict[str, float] = {}
    for key in s.order:
        t, _ = s.providers[key].p_attempt(s.timeouts[key], cap)
        # a retry follows the k-th attempt when it failed transiently, k < max_attempts
        per[key] = sum(t**k for k in range(1, s.max_attempts[key]))
    succ = model_success(s)
    total = 0.0
    for prob, order in model_orderings(s):
        reach = 1.0
        for key in order:
            total += prob * reach * per[key]
            reach *= 1 - succ[key]
    return total
