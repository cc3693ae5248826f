"""The nside progression's values and limits (skyscan_contract.nsides): the a-priori pixel estimate that the
200,000-pixel limit is applied to, both limits at their boundaries, and what each refusal says. Written for
the survivors of a mutmut run (tests/mutants/MUTMUT.md): every assertion is on a value or a message."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from skyscan_contract.nsides import (
    DEFAULT_NSIDES,
    MAX_NSIDE,
    MAX_PIXELS,
    InvalidNsides,
    NSideProgression,
    NSidesField,
)


@pytest.mark.parametrize(
    ("spec", "pixels"),
    [
        ("8:0 64:12 512:24", 768 + 12 * 64 + 24 * 64),  # 3,072, as the README says
        ("1:0 2:12 4:12", 12 + 12 * 4 + 12 * 4),
        ("4:0 64:3", 12 * 16 + 3 * 256),
        ("2:0", 48),
    ],
)
def test_the_pixel_estimate_is_the_first_sky_plus_each_extension_times_the_area_ratio(
    spec: str, pixels: int
) -> None:
    estimate = NSideProgression.parse(spec).estimated_pixels()
    assert estimate == pixels
    assert type(estimate) is int


def test_the_pixel_limit_holds_at_its_boundary() -> None:
    assert MAX_PIXELS == 200_000
    at_limit = NSideProgression.parse("4:0 8:49952")  # 192 + 49,952 × 4 = 200,000
    assert at_limit.estimated_pixels() == MAX_PIXELS
    with pytest.raises(InvalidNsides) as info:
        NSideProgression.parse("4:0 8:49953")
    assert str(info.value) == (
        "nsides: 4:0 8:49953 would reconstruct about 200004 pixels, more than 200000 "
        "(the default 8:0 64:12 512:24 needs 3072)"
    )


def test_the_finest_nside_holds_at_its_boundary() -> None:
    assert MAX_NSIDE == 8192
    assert NSideProgression.parse("8:0 512:1 8192:1").max_nside == 8192
    with pytest.raises(InvalidNsides) as info:
        NSideProgression.parse("8:0 512:1 16384:1")
    assert str(info.value) == "nsides: 16384 is finer than the largest nside, 8192"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "nsides: at least one nside is needed, e.g. '8:0 64:12 512:24'"),
        (
            "8:0 63:12",
            "nsides: 63 is not a power of two; a valid progression is '8:0 64:12 512:24'",
        ),
        ("8:0 64:-1", "nsides: extension -1 of nside 64 must be >= 0"),
        (
            "8:12 64:12",
            "nsides: the first nside's extension must be 0 (it is always full-sky), got 8:12",
        ),
        ("8:0 64:0", "nsides: extension of nside 64 must be a positive integer"),
        ("8:0 64:12 512:0", "nsides: extension of nside 512 must be a positive integer"),
        ({"8": "x"}, "nsides: keys and values must be integers"),
        ("8:0 64:x", "nsides: '64:x' is not of the form NSIDE:EXTENSION"),
    ],
)
def test_each_refusal_says_what_is_wrong(spec: str | dict[str, str], message: str) -> None:
    with pytest.raises(InvalidNsides) as info:
        NSideProgression.parse(spec)
    assert str(info.value).startswith(message)


def test_an_extension_of_one_is_the_smallest_refinement() -> None:
    assert NSideProgression.parse("8:0 64:1 512:1").steps == ((8, 0), (64, 1), (512, 1))


def test_a_pydantic_field_refuses_with_the_progressions_own_message() -> None:
    class Body(BaseModel):
        nsides: NSidesField

    assert Body(nsides="8:0 64:12").nsides == NSideProgression(((8, 0), (64, 12)))
    with pytest.raises(ValidationError) as info:
        Body(nsides="8:0 63:12")
    assert "nsides: 63 is not a power of two" in str(info.value)


def test_extension_and_slices() -> None:
    progression = NSideProgression.parse("8:0 64:12 512:24")
    assert [progression.extension(n) for n in progression.nsides] == [0, 12, 24]
    assert progression.slice_plus_one(None) == [(8, 0)]
    assert progression.slice_plus_one(8) == [(8, 0), (64, 12)]
    assert progression.slice_plus_one(512) == list(progression.steps)
    assert str(DEFAULT_NSIDES) == "8:0 64:12 512:24"
