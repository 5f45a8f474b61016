"""Group commit for small round trips: callers that arrive together share one.

A request path that makes one tiny Redis or PostgreSQL call pays for the round trip
(client-side encoding, a syscall each way, the server's per-command work) far more than
for the work itself. `Coalescer.submit(item)` puts the item in the next batch and waits
for its own result. A batch leaves as soon as fewer than `max_in_flight` batches are on
the wire, so a lone caller waits for nothing; under load, items queue behind the batch
in flight and leave together in the next one, so batches grow exactly as fast as the
load does. Callers get their own result or their own exception; a failed batch fails
only its own callers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# The batch function returns one outcome per item, in order: a result, or an exception
# for that item alone.
BatchFn = Callable[[list[Item]], Awaitable[Sequence[Result | BaseException]]]


class Coalescer(Generic[Item, Result]):
    def __init__(self, run_batch: BatchFn, *, max_batch: int = 256, max_in_flight: int = 1) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError("max_batch and max_in_flight must be at least 1")
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._in_flight = 0
        self._scheduled = False
        self.batches = 0  # counters, for metrics and tests
        self.items = 0

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        self._maybe_send()
        return await future

    def _maybe_send(self) -> None:
        if self._scheduled or not self._pending or self._in_flight >= self._max_in_flight:
            return
        # Leave on the next loop turn, so callers woken in this turn join the batch.
        self._scheduled = True
        asyncio.get_running_loop().call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        if not self._pending or self._in_flight >= self._max_in_flight:
            return
        batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch:]
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        task.add_done_callback(_consume)

    async def _run(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            live = [(item, future) for item, future in batch if not future.done()]  # a caller may have gone
            if live:
                self.batches += 1
                self.items += len(live)
                try:
                    outcomes = await self._run_batch([item for item, _ in live])
                    if len(outcomes) != len(live):
                        raise RuntimeError(f"batch function returned {len(outcomes)} outcomes for {len(live)} items")
                except Exception as exc:
                    outcomes = [exc] * len(live)
                for (_, future), outcome in zip(live, outcomes, strict=True):
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            for _, future in batch:  # cancelled mid-batch (shutdown): nobody may wait forever
                if not future.done():
                    future.cancel()
            self._in_flight -= 1
            self._maybe_send()


def _consume(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()  # _run hands errors to its callers; nothing is left to report
