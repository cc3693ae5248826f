"""The reconstructions a scan can ask for, by name, and what each needs.

SkyDriver validates a request against this table without importing any reconstruction code; the scanner
registers one class per name (`skymap_scanner.recos`), and a test checks the two agree."""

from __future__ import annotations

from dataclasses import dataclass


class UnknownReco(ValueError):
    """A reconstruction name that is not in the table."""


@dataclass(frozen=True)
class RecoInfo:
    """What a reconstruction needs from a scan request."""

    name: str
    #: physics reconstructions read pulses: they need a `pulse-event/1` event (an i3live event's pulses
    #: are IceTray binaries); the dummies read only the event's metadata
    needs_pulses: bool
    #: a sensible `max_pixel_reco_time` (seconds) when the user gives none (the client library's default)
    default_pixel_timeout_s: int
    summary: str


RECOS: dict[str, RecoInfo] = {
    info.name: info
    for info in (
        RecoInfo("dummy", False, 600, "random llh after a short sleep (plumbing tests)"),
        RecoInfo("crash_dummy", False, 600, "dummy that sometimes raises or hangs (fault tests)"),
        RecoInfo("pandel_spe", True, 600, "Pandel track likelihood, first photon per DOM"),
        RecoInfo("pandel_mpe", True, 600, "Pandel track likelihood, first of N photons per DOM"),
    )
}


def reco_info(name: str) -> RecoInfo:
    """The table's entry; `UnknownReco` names the choices."""
    try:
        return RECOS[name]
    except KeyError:
        raise UnknownReco(
            f"unknown algorithm {name!r} (available: {', '.join(sorted(RECOS))})"
        ) from None
