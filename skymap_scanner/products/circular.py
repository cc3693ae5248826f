"""A draft GCN circular in the form of IceCube's track-alert circulars, as plain text to edit.

The layout follows those circulars: a subject line, the reporting sentence, the detection sentence
(date and time), the refined direction block ("RA: x (+a/-b deg 90% PSF containment) J2000", the
same for Dec), the areas, a place for the catalogue cross-match, and a closing line. What the scan
cannot know (stream, purity, false-alarm rate, cross-match, the event's letter, a contact) is
written as ``<...>`` for a person to fill in, unless the scan's classifiers carry it. A result of a
simulated event, or an incomplete one, says so in its first lines.

Numbers come from the stats document only: RA/Dec rounded to 2 decimals, errors to 2 decimals,
areas to 2 decimals (deg²), as the circulars print them.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Mapping
from typing import Any

from .info import ScanInfo

__all__ = ["draft_circular"]

_WIDTH = 100
_WIDTH_NOTE = "<...> marks what a person must fill in or check before sending."


def _fmt_error(plus: float | None, minus: float | None) -> str:
    if plus is None or minus is None:
        return "(unbounded: the 90% region contains a celestial pole) J2000"
    return f"(+{plus:.2f}/-{minus:.2f} deg 90% PSF containment) J2000"


def _event_name(when: dt.datetime | None, classifiers: Mapping[str, Any]) -> str:
    name = classifiers.get("event_name")
    if isinstance(name, str) and name:
        return name
    if when is None:
        return "IceCube-<YYMMDD><A>"
    return f"IceCube-{when:%y%m%d}<A>"


def _scanned(stats: Mapping[str, Any], scan: ScanInfo) -> str:
    info = stats["scan"]
    nsides = info["nsides"]
    counts = info["pixels_per_nside"]
    total = sum(int(v) for v in counts.values())
    reco = scan.reco_algo or "<reconstruction>"
    coarse, fine = nsides[0], nsides[1:]
    refined = (
        f", refined around the best fit at nside {', '.join(str(n) for n in fine)}" if fine else ""
    )
    return (
        f"a likelihood scan of the sky with the {reco} muon-track reconstruction: "
        f"{total} HEALPix directions (nside {coarse} over the whole sky{refined})"
    )


def _convention(stats: Mapping[str, Any]) -> str:
    treatment = stats["probability"]
    if treatment["convention"] == "calibrated":
        text = (
            "The containment regions include a systematic widening of the likelihood, "
            f"calibrated on simulation (90% level at 2DeltaLLH = {treatment['delta_llh_90']:g})"
        )
    else:
        text = "The containment regions are statistical only (Wilks' theorem, no systematic)"
    if treatment.get("smoothing_deg"):
        text += f" and a Gaussian smoothing of {treatment['smoothing_deg']:g} deg"
    return text + "."


def _detection(
    stats: Mapping[str, Any], when: dt.datetime | None, classifiers: Mapping[str, Any]
) -> str:
    pipeline = classifiers.get("pipeline")
    stream = pipeline if isinstance(pipeline, str) else "<alert stream>"
    far = classifiers.get("far_per_year")
    far_text = f"{far:g}" if isinstance(far, int | float) and not isinstance(far, bool) else "<FAR>"
    date = "<date>" if when is None else f"{when:%Y-%m-%d}"
    time = "<time>" if when is None else _hundredths(when)
    return (
        f"On {date} at {time} UT IceCube detected a track-like event "
        f"(run {stats['event']['run_id']}, event {stats['event']['event_id']}), selected by the "
        f"{stream} stream with <signalness> probability of being astrophysical and an estimated "
        f"false alarm rate of {far_text} events per year."
    )


def _hundredths(when: dt.datetime) -> str:
    """hh:mm:ss.ss of a time already shifted by half a hundredth (so truncating rounds)."""
    return f"{when:%H:%M:%S}.{when.microsecond // 10000:02d}"


def _wrap(paragraph: str) -> str:
    return textwrap.fill(paragraph, width=_WIDTH, break_long_words=False, break_on_hyphens=False)


def draft_circular(stats: Mapping[str, Any], scan: ScanInfo) -> str:
    """The draft circular text for the stats document ``stats``.

    Parameters
    ----------
    stats
        The stats document (``stats.build_stats``).
    scan
        Reconstruction name and classifiers (``pipeline``, ``event_name``, ``far_per_year``).

    Returns
    -------
    str
        Plain text, paragraphs wrapped at 100 characters, ending with a newline.
    """
    event = stats["event"]
    when = None
    if event.get("time_utc"):
        # to the nearest hundredth of a second, as the circulars print it (the date follows)
        when = dt.datetime.fromisoformat(event["time_utc"]) + dt.timedelta(microseconds=5000)
    s = stats["summary"]
    name = _event_name(when, scan.classifiers)
    lines: list[str] = []
    if event.get("is_real_event") is False:
        lines.append("*** SIMULATED EVENT: NOT FOR DISTRIBUTION ***")
    if not stats["scan"]["complete"]:
        lines.append("*** PARTIAL RESULT: the scan had not finished when this was drafted ***")
    lines += [
        f"TITLE: DRAFT GCN CIRCULAR ({_WIDTH_NOTE})",
        f"SUBJECT: {name} - IceCube observation of a high-energy neutrino candidate track-like event",
        "",
        "The IceCube Collaboration (http://icecube.wisc.edu/) reports:",
        "",
        _wrap(_detection(stats, when, scan.classifiers)),
        "",
        _wrap(f"The direction was then refined with {_scanned(stats, scan)}, to:"),
        "",
        f"Date: {'<date>' if when is None else f'{when:%Y-%m-%d}'}",
        f"Time: {'<time>' if when is None else _hundredths(when)} UT",
        f"RA: {s['ra_deg']:.2f} {_fmt_error(s['ra_plus_90_deg'], s['ra_minus_90_deg'])}",
        f"Dec: {s['dec_deg']:.2f} {_fmt_error(s['dec_plus_90_deg'], s['dec_minus_90_deg'])}",
        "",
        _wrap(
            f"The 90% (50%) credible region covers {s['area_90_deg2']:.2f} "
            f"({s['area_50_deg2']:.2f}) square degrees. {_convention(stats)}"
        ),
        "",
        "<Fermi 4FGL-DR4 / 3FHL sources inside the 90% region: to be checked.>",
        "",
        "IceCube is a cubic-kilometer neutrino detector at the geographic South Pole, Antarctica.",
        "<Contact of the IceCube realtime alert team.>",
    ]
    return "\n".join(lines) + "\n"
