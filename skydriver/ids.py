"""Scan ids as the original's: epoch milliseconds in hex (11 chars), `x`, 20 hex chars of a uuid4.
32 characters that sort by creation time."""

from __future__ import annotations

import re
import time
import uuid

SCAN_ID_PATTERN = re.compile(r"^[0-9a-f]{11}x[0-9a-f]{20}$")


def new_scan_id(now: float | None = None) -> str:
    millis = int((time.time() if now is None else now) * 1000)
    return f"{millis:011x}x{uuid.uuid4().hex[:20]}"
