"""What the scanner server does with the scan's dead letters: count them for the progress report, and make
sure the scan never waits for a pixel whose task ended there (the broker's delivery limit, a worker of
another version that could not read it): such a task becomes a failed result, like a pixel that failed
`max_pixel_attempts` times. A valid result that ended there (the broker gave up redelivering it) is
collected like any other."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from skyscan_contract.messages import PixelResult, PixelTask

from ..deadletters import DeadLetter
from ..failures import failed_result

#: dead letters listed in the progress report (the most recent ones; the count covers all)
LAST_SHOWN = 10


@dataclass
class DeadLetterTally:
    """The `dead_letters` entry of the progress report: `{"count": n, "last": [...]}`."""

    count: int = 0
    last: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=LAST_SHOWN))

    def record(self, entry: DeadLetter, pixel: tuple[int, int, int] | None) -> None:
        self.count += 1
        shown: dict[str, Any] = {"queue": entry.queue, "reason": entry.reason}
        if pixel is not None:
            shown["pixel"] = list(pixel)
        self.last.append(shown)

    def report(self) -> dict[str, Any]:
        return {"count": self.count, "last": list(self.last)}


def result_of(entry: DeadLetter, scan_id: str) -> PixelResult | None:
    """The result a dead letter stands for: a failed result for one of this scan's tasks, the result
    itself for a valid result; None for anything else (it is only counted)."""
    if not isinstance(entry.data, dict):
        return None
    try:
        task = PixelTask.model_validate(entry.data)
    except ValidationError:
        pass
    else:
        if task.scan_id != scan_id:
            return None
        return failed_result(task, f"dead-lettered: {entry.reason}", worker="dead-letters")
    try:
        return PixelResult.model_validate(entry.data)
    except ValidationError:
        return None
