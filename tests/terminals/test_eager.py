"""start_now: a coroutine run in the caller up to its first wait, then finished by a task exactly
as ``await`` would (results, exceptions and cancellation reach it)."""

from __future__ import annotations

import asyncio

import pytest

from carme_terminals.eager import start_now


async def test_a_coroutine_that_never_waits_is_done_before_start_now_returns() -> None:
    done: list[str] = []

    async def send() -> None:
        done.append("sent")

    assert start_now(send()) is None
    assert done == ["sent"]


async def test_an_error_before_the_first_wait_is_raised_to_the_caller() -> None:
    async def send() -> None:
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        start_now(send())


async def test_a_coroutine_that_waits_is_finished_by_a_task_with_what_it_waited_for() -> None:
    room = asyncio.get_running_loop().create_future()
    steps: list[object] = []

    async def send() -> None:
        steps.append("started")
        steps.append(await room)
        await asyncio.sleep(0)  # a bare yield too
        steps.append("finished")

    task = start_now(send())
    assert task is not None and steps == ["started"]
    room.set_result("room")
    await task
    assert steps == ["started", "room", "finished"]


async def test_exceptions_and_cancellation_reach_the_coroutine_where_it_waits() -> None:
    loop = asyncio.get_running_loop()
    failing, stuck = loop.create_future(), loop.create_future()
    seen: list[str] = []

    async def send(waiting_on: asyncio.Future[None]) -> None:
        try:
            await waiting_on
        except BaseException as exc:
            seen.append(type(exc).__name__)
            raise

    first, second = start_now(send(failing)), start_now(send(stuck))
    assert first is not None and second is not None
    failing.set_exception(BrokenPipeError())
    with pytest.raises(BrokenPipeError):
        await first
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    assert seen == ["BrokenPipeError", "CancelledError"] and stuck.cancelled()
