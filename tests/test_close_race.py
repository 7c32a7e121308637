"""close() racing with ``with_options`` copies made in other threads (SPEC 5: it restores all, always)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import notdiamond
from notdiamond._patching import SLOT_ATTR
from tests.fakes import FakeProvider

TRIALS = 20
THREADS = 4


@pytest.fixture
def _fast_thread_switches() -> Iterator[None]:
    """Switch threads every few microseconds, so copies and close() interleave finely."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def _copy_until(
    client: Any, stop: threading.Event, made: list[Any], started: threading.Barrier
) -> None:
    started.wait()
    while not stop.is_set():
        copy = client.with_options(timeout=5.0)
        made.append(copy)
        made.append(copy.with_options(max_retries=1))  # a copy of a copy shares the slot


def _assert_plain(obj: Any, cls: type) -> None:
    assert type(obj) is cls
    assert SLOT_ATTR not in obj.__dict__


@pytest.mark.usefixtures("_fast_thread_switches")
@pytest.mark.parametrize("trial", range(TRIALS))
def test_close_restores_the_client_and_every_copy_made_meanwhile(
    fake: FakeProvider, trial: int
) -> None:
    client = fake.openai()
    plain = type(client)
    manager = notdiamond.init(client, models=["openai/gpt-4o-mini"])
    stop = threading.Event()
    started = threading.Barrier(THREADS + 1)
    made: list[list[Any]] = [[] for _ in range(THREADS)]
    threads = [
        threading.Thread(target=_copy_until, args=(client, stop, made[i], started))
        for i in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    started.wait()
    while min(map(len, made)) < 50:  # copies are being made in every thread right now
        pass
    try:
        manager.close()  # must neither raise nor leave anything patched
    finally:
        after_close = sum(map(len, made))
        while sum(map(len, made)) < after_close + 200:  # and copies made right after it
            pass
        stop.set()
        for thread in threads:
            thread.join()

    assert manager.closed
    _assert_plain(client, plain)
    for copies in made:
        for copy in copies:
            _assert_plain(copy, plain)
    # A restored client and its copies call the plain SDK: no request is routed any more.
    fake.script("openai/notdiamond", lambda request: pytest.fail("routed after close"))
    last_copy = [copy for copies in made for copy in copies][-1]  # a busy thread may make none
    assert last_copy.chat.completions.create(model="gpt-4o-mini", messages=[]).model
    # Managing the client again works as on a fresh one.
    again = notdiamond.init(client, models=["openai/gpt-4o-mini"])
    assert type(client) is not plain
    again.close()
    _assert_plain(client, plain)
