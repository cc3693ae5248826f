"""The server's side of the broker: publish tasks, read results and dead letters, and acknowledge results
only once they are persisted.

A result is acknowledged only after a partial (or the final) result that contains it has reached every
sink (SkyDriver, the result file): until then it stays unacknowledged on the broker, so a server that dies
loses nothing — its successor resumes from the persisted result and gets the rest redelivered. The
consumer's prefetch bounds what may stay unacknowledged, so the transport asks for a persist (it yields
None) when half the prefetch is pending, and whenever the queue drains (no message for a second); the
scan loop answers with a partial result (`Reporter.persist`), which calls `acknowledge`.

Nothing received is raised: a message that cannot be decoded or validated is copied to the scan's
dead-letter queue (and acknowledged with the others); the dead-letter queue itself is consumed here too,
counted in `tally`, and a task found there becomes a failed result (`deadletters.result_of`)."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing

from pydantic import ValidationError

from skyscan_contract.messages import PixelResult, PixelTask
from skyscan_contract.queues import dead_letters_queue

from ..deadletters import dead_letter, read_dead_letter
from ..mq import Consumer, Publisher, Received
from .deadletters import DeadLetterTally, result_of
from .scan import ClientsTimedOut

LOG = logging.getLogger(__name__)


class MQTransport:
    def __init__(
        self,
        scan_id: str,
        publisher: Publisher,
        consumer: Consumer,
        dead_letters: Publisher,
        *,
        prefetch: int,
        idle_timeout_s: float,
        kill_switch: Callable[[], Awaitable[None]],
        tally: DeadLetterTally,
    ) -> None:
        self.scan_id = scan_id
        self.publisher = publisher
        self.consumer = consumer
        self.dead_letters = dead_letters
        self.persist_at = max(1, prefetch // 2)
        self.idle_timeout_s = idle_timeout_s
        self.kill_switch = kill_switch
        self.tally = tally
        #: received, read, not yet acknowledged (in delivery order)
        self.pending: list[Received] = []

    async def publish(self, tasks: list[PixelTask]) -> None:
        await self.publisher.send_many(list(tasks))

    async def results(self) -> AsyncGenerator[PixelResult | None, None]:
        """Results as they arrive; None when what is pending should be persisted now (see module doc)."""
        idle_since = time.monotonic()
        while True:
            async with aclosing(self.consumer.messages()) as messages:
                async for msg in messages:
                    self.pending.append(msg)
                    result = await self._read(msg)
                    if result is not None:
                        idle_since = time.monotonic()
                        yield result
                    if len(self.pending) >= self.persist_at:
                        yield None
            if self.pending:
                yield None  # the queue drained
            if time.monotonic() - idle_since > self.idle_timeout_s:
                raise ClientsTimedOut(
                    f"no result for {self.idle_timeout_s:g}s (SKYSCAN_MQ_TIMEOUT_FROM_CLIENTS)"
                )
            await self.kill_switch()

    async def acknowledge(self) -> None:
        """Everything read so far is persisted: acknowledge it."""
        pending, self.pending = self.pending, []
        await self.consumer.ack_all(pending)

    async def _read(self, msg: Received) -> PixelResult | None:
        if msg.queue == dead_letters_queue(self.scan_id):
            entry = read_dead_letter(msg)
            result = result_of(entry, self.scan_id)
            pixel = result.reco_pixel_variation.id_tuple if result is not None else None
            self.tally.record(entry, pixel)
            LOG.warning("dead letter from %s: %s (pixel %s)", entry.queue, entry.reason, pixel)
            return result
        if msg.error is not None:
            await dead_letter(self.dead_letters, msg, msg.error)
            return None
        try:
            return PixelResult.model_validate(msg.data)
        except ValidationError as e:
            await dead_letter(self.dead_letters, msg, f"not a PixelResult: {e}")
            return None
