"""Dead letters: what a scan's reader cannot process is copied, as it came, to `dead-letters-<scan_id>`
and acknowledged, instead of being raised (one malformed task used to kill every worker that took it, and
one malformed result the server). The broker puts messages there too, once a quorum queue's
`delivery-limit` is reached (SkyDriver's policy on the scan's virtual host dead-letters to this queue).
The scanner server consumes the queue and counts each entry in the scan's progress.

Why an entry is there travels in AMQP headers: ours (`x-skyscan-queue`, `x-skyscan-reason`) for a copy,
RabbitMQ's `x-death` for a message the broker dead-lettered."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from .mq import Publisher, Received

LOG = logging.getLogger(__name__)

QUEUE_HEADER = "x-skyscan-queue"
REASON_HEADER = "x-skyscan-reason"
#: the reason kept with a copy is cut to this many characters (a pydantic error can be long)
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class DeadLetter:
    """An entry of the dead-letter queue: where it was, why it is here, and its data if decodable."""

    queue: str
    reason: str
    data: Any


async def dead_letter(publisher: Publisher, msg: Received, reason: str) -> None:
    """Copy a message that cannot be processed to the dead-letter queue (the caller acks it after)."""
    reason = reason[:MAX_REASON_CHARS]
    LOG.warning("dead-lettered a message of %s (%d bytes): %s", msg.queue, len(msg.body), reason)
    await publisher.send_raw(msg.body, {QUEUE_HEADER: msg.queue, REASON_HEADER: reason})


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def read_dead_letter(msg: Received) -> DeadLetter:
    """What an entry of the dead-letter queue is, whoever put it there."""
    headers = msg.headers
    if REASON_HEADER in headers:
        return DeadLetter(
            _text(headers.get(QUEUE_HEADER, "")), _text(headers[REASON_HEADER]), msg.data
        )
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        death = deaths[0]  # the most recent
        reason = f"dead-lettered by the broker: {_text(death.get('reason', '?'))}"
        return DeadLetter(_text(death.get("queue", "")), reason, msg.data)
    return DeadLetter(
        "", msg.error or "put on the dead-letter queue by an unknown publisher", msg.data
    )
