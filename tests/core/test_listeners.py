"""carme.listeners.Listeners: the one callback list behind the event bus, the contents manager's
change listeners and a kernel's subscriptions."""

from __future__ import annotations

import logging

import pytest

from carme.listeners import Listeners

log = logging.getLogger("carme.test-listeners")


def test_a_failing_callback_is_logged_and_the_others_still_called(caplog: pytest.LogCaptureFixture) -> None:
    heard: list[str] = []
    listeners: Listeners[[str]] = Listeners(log, "a test listener")

    def broken(event: str) -> None:
        raise ValueError("cannot take " + event)

    listeners.add(broken)
    listeners.add(heard.append)
    with caplog.at_level(logging.ERROR, logger=log.name):
        listeners.notify("restarting")
    assert heard == ["restarting"]
    [record] = caplog.records
    assert record.getMessage() == "a test listener failed on 'restarting'"
    assert "cannot take restarting" in (record.exc_text or "")


def test_remove_stops_a_callback_even_while_notifying() -> None:
    heard: list[str] = []
    listeners: Listeners[[str]] = Listeners(log, "a test listener")
    removers = []

    def first(event: str) -> None:
        heard.append("first " + event)
        removers[1]()  # removing the second one now still lets it hear this event, not the next

    removers.append(listeners.add(first))
    removers.append(listeners.add(lambda event: heard.append("second " + event)))
    listeners.notify("a")
    listeners.notify("b")
    assert heard == ["first a", "second a", "first b"]
    removers[0]()
    removers[0]()  # twice is fine
    assert not listeners and len(listeners) == 0


async def test_notify_async_awaits_async_callbacks_in_turn(caplog: pytest.LogCaptureFixture) -> None:
    heard: list[tuple[str, str | None]] = []
    listeners: Listeners[[str, str | None]] = Listeners(log, "a contents listener")

    async def slow(action: str, source: str | None) -> None:
        heard.append((action, source))

    async def broken(action: str, source: str | None) -> None:
        raise OSError("disk gone")

    listeners.add(slow)
    listeners.add(broken)
    listeners.add(lambda action, source: heard.append((action.upper(), source)))
    with caplog.at_level(logging.ERROR, logger=log.name):
        await listeners.notify_async("save", None)
    assert heard == [("save", None), ("SAVE", None)]
    assert [r.getMessage() for r in caplog.records] == ["a contents listener failed on 'save', None"]
