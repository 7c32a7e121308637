"""The circuit breaker agrees, decision by decision, with an independent reference model."""

from __future__ import annotations

from collections import Counter

from ..health import breaker_of
from ..reference.breaker import Admit, Change, LastResort, Outcome
from ..reference.recorder import config_of, disagreements
from ..results import CheckResult
from ..scenario import Scenario
from . import register
from .base import Check, RunView


@register
class BreakerReference(Check):
    name = "breaker_reference"
    description = (
        "every admit/skip/probe decision, every last resort and every open/half-open/close "
        "transition (its time and the end of the break) of the runtime's breaker equals the "
        "reference model's (chaos/reference/breaker.py) replaying the same events in virtual "
        "time; every transition reached observer as a BreakerTransition (exact)"
    )
    needs = frozenset({"http"})

    def applies(self, scenario: Scenario) -> bool:
        return scenario.mode in ("sync", "async") and breaker_of(scenario.config) is not None

    def run(self, view: RunView) -> CheckResult:
        options = breaker_of(view.scenario.config)
        config = config_of(options, view.scenario.retry_after_cap)
        recorders = view.trace.health.breakers if view.trace and view.trace.health else []
        found: list[str] = []
        steps = 0
        decisions: Counter[str] = Counter()
        changes: Counter[str] = Counter()
        recorded: list[Change] = []
        for recorder in recorders:
            steps += len(recorder.steps)
            found.extend(disagreements(recorder.steps, config, limit=20))
            for step in recorder.steps:
                if isinstance(step.event, Admit):
                    decisions[str(step.answer)] += 1
                elif isinstance(step.event, LastResort):
                    decisions["last_resort"] += 1
                elif isinstance(step.event, Outcome):
                    decisions[f"outcome:{step.event.kind}"] += 1
                else:
                    decisions[f"still:{step.answer}"] += 1
                for change in step.changes:
                    changes[change.to] += 1
                    recorded.append(change)
        problems = len(found)
        if not recorders:
            found.append("no breaker was recorded (chaos.health.recording not applied?)")
            problems += 1
        # what reached observer= is what the breaker reported, in the same order
        observed = [
            Change(t.at, t.key, t.after, t.until)
            for t in (view.trace.transitions if view.trace else [])
        ]
        if observed != recorded:
            problems += 1
            found.append(
                f"observer received {len(observed)} transitions, the breaker made {len(recorded)}"
            )
        transitions = sum(changes.values())
        return self.exact(
            view,
            problems,
            events=transitions,
            n=steps,
            summary=(
                f"{steps} breaker events replayed ({dict(decisions)}); transitions "
                f"{dict(changes)}; {problems} disagreements with the reference"
            ),
            details={"disagreements": found[:20], "decisions": dict(decisions)},
        )
