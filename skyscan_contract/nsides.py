"""The nside progression (`8:0 64:12 512:24`): which HEALPix resolutions a scan visits, in order, and how far
around the best pixel each finer one reaches (the pixel extension).

One type end to end: `NSideProgression.parse` at the edges that receive text or JSON (the REST request, the
scanner's command line), `to_json_dict()` where it is stored, `argv()` where it crosses into a process. Inside
the programs it stays a `NSideProgression`."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator, WithJsonSchema


class InvalidNsides(ValueError):
    """An nside progression that the scanner cannot run."""


#: the finest HEALPix resolution a scan may visit (0.007 deg pixels)
MAX_NSIDE = 8192
#: the most pixels a progression may need (its a-priori estimate, see `estimated_pixels`); the default
#: 8:0 64:12 512:24 needs 3,072
MAX_PIXELS = 200_000


@dataclass(frozen=True)
class NSideProgression:
    """Ordered `(nside, pixel_extension)` pairs; the first extension is always 0 (the first nside is
    full-sky)."""

    steps: tuple[tuple[int, int], ...]

    def __post_init__(self) -> None:
        if not self.steps:
            raise InvalidNsides(
                f"nsides: at least one nside is needed, e.g. {str(DEFAULT_NSIDES)!r}"
            )
        nsides = [n for n, _ in self.steps]
        for nside, ext in self.steps:
            if nside < 1 or nside & (nside - 1):
                raise InvalidNsides(
                    f"nsides: {nside} is not a power of two; a valid progression is {str(DEFAULT_NSIDES)!r}"
                )
            if ext < 0:
                raise InvalidNsides(f"nsides: extension {ext} of nside {nside} must be >= 0")
        if len(set(nsides)) != len(nsides):
            raise InvalidNsides(f"nsides: duplicate nside in {nsides}")
        if nsides != sorted(nsides):
            raise InvalidNsides(f"nsides: must be strictly ascending, got {nsides}")
        if self.steps[0][1] != 0:
            raise InvalidNsides(
                f"nsides: the first nside's extension must be 0 (it is always full-sky), "
                f"got {self.steps[0][0]}:{self.steps[0][1]}"
            )
        for nside, ext in self.steps[1:]:
            if ext < 1:
                raise InvalidNsides(
                    f"nsides: extension of nside {nside} must be a positive integer"
                )
        if nsides[-1] > MAX_NSIDE:
            raise InvalidNsides(
                f"nsides: {nsides[-1]} is finer than the largest nside, {MAX_NSIDE}"
            )
        if (n := self.estimated_pixels()) > MAX_PIXELS:
            raise InvalidNsides(
                f"nsides: {self} would reconstruct about {n} pixels, more than {MAX_PIXELS} "
                f"(the default {DEFAULT_NSIDES} needs {DEFAULT_NSIDES.estimated_pixels()})"
            )

    @classmethod
    def parse(cls, spec: str | Iterable[str] | Mapping[int | str, int]) -> NSideProgression:
        """Parse `"8:0 64:12"`, `["8:0", "64:12"]` or `{8: 0, 64: 12}` (string keys allowed)."""
        if isinstance(spec, NSideProgression):
            return spec
        steps: list[tuple[int, int]] = []
        if isinstance(spec, Mapping):
            try:
                steps = [(int(k), int(v)) for k, v in spec.items()]
            except (TypeError, ValueError) as e:
                raise InvalidNsides(f"nsides: keys and values must be integers ({e})") from e
        else:
            # blanks or commas between the steps: "8:0 64:12", "8:0,64:12"
            items = re.split(r"[\s,]+", spec.strip()) if isinstance(spec, str) else list(spec)
            items = [i for i in items if i]
            for item in items:
                parts = str(item).split(":")
                if len(parts) != 2:
                    raise InvalidNsides(f"nsides: {item!r} is not of the form NSIDE:EXTENSION")
                try:
                    steps.append((int(parts[0]), int(parts[1])))
                except ValueError as e:
                    raise InvalidNsides(
                        f"nsides: {item!r} is not of the form NSIDE:EXTENSION"
                    ) from e
        return cls(tuple(steps))

    @property
    def nsides(self) -> list[int]:
        return [n for n, _ in self.steps]

    @property
    def min_nside(self) -> int:
        return self.steps[0][0]

    @property
    def max_nside(self) -> int:
        return self.steps[-1][0]

    def extension(self, nside: int) -> int:
        return dict(self.steps)[nside]

    def slice_plus_one(self, nside: int | None) -> list[tuple[int, int]]:
        """Steps up to and including the one after `nside` (None → just the first; the last → all)."""
        if nside is None:
            return [self.steps[0]]
        idx = self.nsides.index(nside)  # ValueError for an unknown nside, as the original
        return list(self.steps[: idx + 2])

    def estimated_pixels(self) -> int:
        """The original's a-priori estimate of the pixels a scan reconstructs: the whole sky at the first
        nside, then `extension × (nside / previous)²` at each finer one."""
        total = 12 * self.steps[0][0] ** 2
        for (prev, _), (nside, ext) in zip(self.steps, self.steps[1:], strict=False):
            total += ext * (nside // prev) ** 2
        return total

    def to_json_dict(self) -> dict[str, int]:
        """The stored form (and the REST API's): `{"8": 0, "64": 12}`."""
        return {str(n): e for n, e in self.steps}

    def argv(self) -> list[str]:
        """The command-line form: `["8:0", "64:12"]` (the values of `--nsides`)."""
        return [f"{n}:{e}" for n, e in self.steps]

    def __str__(self) -> str:
        return " ".join(self.argv())


DEFAULT_NSIDES = NSideProgression(((8, 0), (64, 12), (512, 24)))


def _validate(value: Any) -> NSideProgression:
    try:
        return NSideProgression.parse(value)
    except InvalidNsides as e:
        raise ValueError(str(e)) from e


#: `NSideProgression` as a pydantic field: validated from any form `parse` takes, stored as the JSON dict
NSidesField = Annotated[
    NSideProgression,
    PlainValidator(_validate),
    PlainSerializer(lambda p: p.to_json_dict(), return_type=dict[str, int]),
    WithJsonSchema({"type": "object", "additionalProperties": {"type": "integer"}}),
]
