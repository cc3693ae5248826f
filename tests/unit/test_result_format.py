"""The serialised result, field by field, against the format of the original's `SkyScanResult.serialize()`
(reference skymap-scanner.md §5.1–5.2): one `nside-<n>` entry per nside with the v1 columns, rows sorted by
pixel, NaN as the "<skyreader.nan>" sentinel, and the full metadata in the original's key order, with
`complete` saying whether the scan is done. Checked directly, not through a downstream parser."""

from __future__ import annotations

import math

from skymap_scanner.events import EventMetadata
from skymap_scanner.pixels import PixelReco
from skymap_scanner.server.result import build_result, result_filename

META = EventMetadata(
    run_id=136662,
    event_id=35405932,
    event_type="neutrino",
    mjd=59723.32051140454,
    is_real_event=True,
)


def reco(nside: int, pixel: int, llh: float) -> PixelReco:
    return PixelReco(nside, pixel, llh, 1.5, 2.5, 10.0, 20.0, 30.0, 40.0, 99.0)


def metadata(nside: int, complete: bool) -> dict[str, object]:
    return {
        "nside": nside,
        "complete": complete,
        "run_id": 136662,
        "event_id": 35405932,
        "event_type": "neutrino",
        "mjd": 59723.32051140454,
        "is_real_event": True,
        "version": 1,
    }


def test_every_field_of_a_partial_and_a_final_result() -> None:
    # arrival order, not pixel order; nside 2 before nside 1 in the dict
    nsides_dict = {
        2: {7: reco(2, 7, 3.0), 1: reco(2, 1, math.nan)},
        1: {5: reco(1, 5, 1.0)},
    }
    columns = ["index", "llh", "E_in", "E_tot", "X", "Y", "Z", "T"]
    for complete in (False, True):
        result = build_result(nsides_dict, META, complete=complete)
        assert result == {
            "nside-1": {
                "columns": columns,
                "data": [[5, 1.0, 1.5, 2.5, 10.0, 20.0, 30.0, 40.0]],
                "metadata": metadata(1, complete),
            },
            "nside-2": {
                "columns": columns,
                "data": [
                    [1, "<skyreader.nan>", 1.5, 2.5, 10.0, 20.0, 30.0, 40.0],
                    [7, 3.0, 1.5, 2.5, 10.0, 20.0, 30.0, 40.0],
                ],
                "metadata": metadata(2, complete),
            },
        }
        assert list(result) == ["nside-1", "nside-2"]
        assert list(result["nside-2"]["metadata"]) == list(metadata(2, complete))  # key order


def test_nothing_collected_is_an_empty_result() -> None:
    assert build_result({}, META, complete=False) == {}


def test_the_file_name_is_the_originals() -> None:
    assert (
        result_filename(META, [64, 8, 512]) == "run00136662.evt000035405932.neutrino_8_64_512.json"
    )
