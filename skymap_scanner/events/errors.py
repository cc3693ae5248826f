"""The error raised for an event that does not follow the ``pulse-event/1`` format (or an unreadable
i3live event)."""

from __future__ import annotations

__all__ = ["InvalidEvent"]


class InvalidEvent(ValueError):
    """An event was rejected.

    The message always starts with the offending field (and, for pulses, the first offending row and
    column), for example ``pulses[17][3]: charge must be > 0, got -1.0``.

    Attributes:
        field: the field path, e.g. ``"run_id"``, ``"pulses[17][3]"``, ``"geometry['87-1']"``.
        problem: the explanation, without the field path.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")

    def __reduce__(self) -> tuple[type[InvalidEvent], tuple[str, str]]:
        # keep the exception picklable (multiprocessing, message queues)
        return (InvalidEvent, (self.field, self.problem))
