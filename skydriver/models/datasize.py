"""Data sizes as the original accepts them (humanfriendly rules): decimal units, `1G` = 10^9 bytes;
binary units with `i` (`1GiB` = 2^30)."""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?)(b?)(?:ytes?)?\s*$", re.IGNORECASE)


def parse_data_size(value: str | int) -> int:
    """Bytes in `value`; raises ValueError('invalid size: ...') otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"invalid size: {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid size: {value}")
        return value
    match = _PATTERN.match(value)
    if not value.strip() or not match:
        raise ValueError(f"invalid size: {value!r}")
    number, unit, binary, _ = match.groups()
    unit = unit.lower()
    if binary and not unit:
        raise ValueError(f"invalid size: {value!r}")
    factor = 1024 ** ("kmgtp".index(unit) + 1) if binary else _UNITS[unit]
    return int(float(number) * factor)
