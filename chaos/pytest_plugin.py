"""notdiamond's pytest plugin: the ``chaos`` fixture (fake providers with faults, virtual time).

Installed with the package, pytest loads it through the ``pytest11`` entry point, so a test asks
for the fixture by name, without imports::

    def test_openai_outage(chaos):
        fake = chaos.providers({
            "openai/gpt-4o": {"outages": [{"start": 0, "end": 600, "status": "503"}]},
            "azure/gpt-4o": {},
        })
        with my_app.make_resilient(fake.openai, fake.azure):  # the application's own init
            for _ in range(100):
                chaos.call(my_app.answer, fake.openai, "Where is my parcel?")
                chaos.sleep(6)
        chaos.trace.assert_all_succeeded()

The fixture's object is :class:`chaos.testing.Chaos`. This module is what pytest imports at start-up
in every run, so it imports only pytest and the standard library: the harness (and with it
``notdiamond`` and ``openai``) is imported when a test first asks for the fixture.

One file, three names: ``notdiamond.chaos.pytest_plugin`` in the wheel, ``chaos.pytest_plugin`` in
this repository, and the top-level ``notdiamond_pytest`` module the entry point names (a copy in
the wheel; importing anything under ``notdiamond.`` would import the library on every pytest run).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .testing import Chaos


def _harness() -> ModuleType:
    """The module that implements the fixture (``chaos.testing`` under whichever name it has)."""
    if __package__:  # imported as notdiamond.chaos.pytest_plugin or chaos.pytest_plugin
        return importlib.import_module(".testing", __package__)
    try:  # the top-level entry point module of an installed wheel
        return importlib.import_module("notdiamond.chaos.testing")
    except ModuleNotFoundError as exc:
        if exc.name not in ("notdiamond.chaos", "notdiamond.chaos.testing"):
            raise
    # An editable install of a checkout (``pip install -e``): notdiamond/ is the checkout's own
    # directory, where the harness is the top-level chaos/ package.
    return importlib.import_module("chaos.testing")


@pytest.fixture
def chaos() -> Iterator[Chaos]:
    """Fake OpenAI/Azure providers with faults, on virtual time, and the trace of the test.

    ``chaos.providers(faults)`` returns the fake clients (``.openai``, ``.azure``,
    ``.async_openai``, ``.async_azure``); ``chaos.call(fn, *args)`` makes one recorded call;
    ``chaos.sleep(s)`` lets virtual time pass; ``chaos.run(coro)`` runs async code on virtual
    time; ``chaos.trace`` holds the calls, attempts and requests, with ``assert_*`` helpers.
    """
    harness = _harness()
    with harness.Chaos.active() as session:
        yield session
    problems = session.problems()
    if problems:
        pytest.fail("chaos fixture: " + "\n".join(problems), pytrace=False)
