"""server.sse.DisconnectWatch: one watcher per request, cancelling only the work it guards.

The API tests (tests/api/test_chat.py) show that a client leaving before the first chunk, while
streaming and while a whole answer is built aborts the engine request; these pin down the
watcher's own rules, which those cannot reach: a cancellation that is not the watcher's is never
turned into a disconnect, the watcher never fires outside ``run`` (so never into clean-up), and
a client that left between the two phases of a stream is seen by the second.
"""

from __future__ import annotations

import asyncio

import pytest

from server.sse import ClientDisconnected, DisconnectWatch


class Client:
    """An ASGI ``receive`` whose disconnect the test triggers."""

    def __init__(self) -> None:
        self.left = asyncio.Event()

    async def receive(self) -> dict:
        await self.left.wait()
        return {"type": "http.disconnect"}


def run(coroutine):
    return asyncio.run(coroutine)


def test_work_that_finishes_returns_its_result_and_the_watcher_stops():
    async def main():
        client = Client()
        watch = DisconnectWatch(client.receive)
        assert await watch.run(asyncio.sleep(0, result="done")) == "done"
        watch.stop()
        client.left.set()
        await asyncio.sleep(0.01)
        return watch.gone, asyncio.current_task().cancelling()

    assert run(main()) == (False, 0)  # stopped before the disconnect: never saw it


def test_a_client_that_leaves_during_the_work_stops_it():
    async def main():
        client = Client()
        watch = DisconnectWatch(client.receive)
        stopped = asyncio.Event()

        async def work():
            try:
                await asyncio.sleep(30)
            finally:
                stopped.set()

        asyncio.get_running_loop().call_later(0.01, client.left.set)
        with pytest.raises(ClientDisconnected):
            await watch.run(work())
        watch.stop()
        await asyncio.sleep(0)  # the clean-up may await: no cancellation is left pending
        return stopped.is_set(), asyncio.current_task().cancelling()

    assert run(main()) == (True, 0)


def test_someone_elses_cancellation_stays_a_cancellation():
    """The deadline reaper cancels the serving task too: that is not a disconnect."""

    async def main():
        watch = DisconnectWatch(Client().receive)
        task = asyncio.current_task()
        asyncio.get_running_loop().call_later(0.01, task.cancel)
        try:
            await watch.run(asyncio.sleep(30))
        except asyncio.CancelledError:
            task.uncancel()
            return "cancelled"
        finally:
            watch.stop()
        return "finished"

    assert run(main()) == "cancelled"


def test_both_at_once_stays_a_cancellation():
    async def main():
        client = Client()
        watch = DisconnectWatch(client.receive)
        task = asyncio.current_task()

        def both():
            client.left.set()
            task.cancel()

        asyncio.get_running_loop().call_later(0.01, both)
        try:
            await watch.run(asyncio.sleep(30))
        except asyncio.CancelledError:
            return task.uncancel()  # the other cancellation came through as itself
        finally:
            watch.stop()
        return None

    assert run(main()) == 0


def test_a_client_gone_between_the_phases_is_seen_by_the_next_one():
    """The first frame is pulled inside the route, the body sent later by the response: a
    disconnect in between cancels nothing and the second phase does not start."""

    async def main():
        client = Client()
        watch = DisconnectWatch(client.receive)
        assert await watch.run(asyncio.sleep(0, result=1)) == 1
        client.left.set()
        await asyncio.sleep(0.01)  # the gap: the watcher sees the disconnect here
        assert watch.gone
        body = asyncio.sleep(30)
        with pytest.raises(ClientDisconnected):
            await watch.run(body)
        watch.stop()
        assert body.cr_frame is None  # closed, never started
        return asyncio.current_task().cancelling()

    assert run(main()) == 0
