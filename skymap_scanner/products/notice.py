"""A GCN notice for the IceCube single-neutrino-alert schema (unified GCN schema, JSON).

Schema: ``gcn/notices/icecube/single_neutrino_alerts.schema.json`` of ``@nasa-gcn/schema``
``GCN_SCHEMA_VERSION`` (pinned; ``scripts/setup.sh`` installs that npm package for the tests).

What the scan gives: position (``ra``, ``dec`` of the best fit), ``ra_dec_error`` (radius of the
circle around it that holds ``containment_probability`` = 0.9 of the map), ``systematic_included``
(the probability convention, see ``probability``), ``trigger_time`` (the event time), ``id``
(``<run>_<event>``). Sequencing is the caller's: ``alert_type`` (``initial`` for the first notice of
an event, ``update`` for later results and rescans), ``record_number``, ``alert_tense`` (``test``
unless told otherwise).

What the scan cannot know is left out unless the scan's classifiers carry it (values of the wrong
type are ignored, with a warning):

=================  ===========================  ==========================================
classifier         notice field                 unit / values
=================  ===========================  ==========================================
``pipeline``       ``pipeline``                 Gold Track Alert, Bronze Track Alert, Cascade Alert
``event_name``     ``event_name``               e.g. IceCube-230416A
``nu_energy_tev``  ``nu_energy``                TeV
``signalness``     ``p_astro``                  0-1 (``p_astro`` is read too)
``far_per_year``   ``far``                      events per year, converted to Hz (``far``: Hz)
=================  ===========================  ==========================================
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import math
from collections.abc import Mapping
from typing import Any

from .info import ProductOptions, ScanInfo

__all__ = ["GCN_SCHEMA_ID", "GCN_SCHEMA_VERSION", "PIPELINES", "gcn_notice"]

LOG = logging.getLogger(__name__)

GCN_SCHEMA_VERSION = "7.2.3"
"""Version of ``@nasa-gcn/schema`` the notice is written for (and tested against)."""
GCN_SCHEMA_ID = (
    f"https://gcn.nasa.gov/schema/v{GCN_SCHEMA_VERSION}"
    "/gcn/notices/icecube/single_neutrino_alerts.schema.json"
)
PIPELINES = ("Gold Track Alert", "Bronze Track Alert", "Cascade Alert")
_SECONDS_PER_YEAR = 365.25 * 86400.0


def _number(classifiers: Mapping[str, Any], key: str, low: float, high: float) -> float | None:
    value = classifiers.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        LOG.warning(
            "classifier %s=%r ignored: a number within %g-%g is needed", key, value, low, high
        )
        return None
    return float(value)


def _from_classifiers(classifiers: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    pipeline = classifiers.get("pipeline")
    if pipeline is not None:
        if pipeline in PIPELINES:
            out["pipeline"] = pipeline
        else:
            LOG.warning("classifier pipeline=%r ignored: one of %s is needed", pipeline, PIPELINES)
    name = classifiers.get("event_name")
    if isinstance(name, str) and name:
        out["event_name"] = [name]
    energy = _number(classifiers, "nu_energy_tev", 0.0, math.inf)
    if energy is not None:
        out["nu_energy"] = energy
    signal = _number(classifiers, "signalness", 0.0, 1.0)
    if signal is None:
        signal = _number(classifiers, "p_astro", 0.0, 1.0)
    if signal is not None:
        out["p_astro"] = signal
    far_year = _number(classifiers, "far_per_year", 0.0, math.inf)
    if far_year is not None:
        out["far"] = far_year / _SECONDS_PER_YEAR
    return out


def gcn_notice(
    stats: Mapping[str, Any],
    scan: ScanInfo,
    options: ProductOptions,
    *,
    healpix_fits: bytes | None = None,
) -> dict[str, Any]:
    """The notice as a JSON-ready dict.

    Parameters
    ----------
    stats
        The stats document (``stats.build_stats``).
    scan
        Scan identifiers and classifiers.
    options
        Sequencing (``alert_type``, ``record_number``, ``alert_tense``), ``issued_at``,
        ``healpix_url`` and ``embed_healpix``.
    healpix_fits
        The multi-order FITS bytes, embedded when ``options.embed_healpix``.

    Returns
    -------
    dict
        The notice; angles in degrees, ``far`` in Hz, ``nu_energy`` in TeV.
    """
    event = stats["event"]
    summary = stats["summary"]
    notice: dict[str, Any] = {
        "$schema": GCN_SCHEMA_ID,
        "mission": "IceCube",
        "instrument": "IC86",
        "messenger": "Neutrino",
        "record_number": options.record_number,
        "alert_type": options.alert_type.value,
        "alert_tense": options.alert_tense,
        "alert_topology": "Track",
        "number_of_events": 1,
    }
    if event.get("run_id") is not None and event.get("event_id") is not None:
        notice["id"] = [f"{event['run_id']}_{event['event_id']}"]
    if options.issued_at is not None:
        notice["alert_datetime"] = options.issued_at.astimezone(dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )
    if event.get("time_utc"):
        notice["trigger_time"] = event["time_utc"]
    notice |= {
        "ra": round(summary["ra_deg"], 4),
        "dec": round(summary["dec_deg"], 4),
        "ra_dec_error": round(summary["radius_90_deg"], 4),
        "containment_probability": 0.9,
        "systematic_included": bool(summary["systematic_included"]),
    }
    if options.healpix_url:
        notice["healpix_url"] = options.healpix_url
    if options.embed_healpix and healpix_fits is not None:
        notice["healpix_file"] = base64.b64encode(healpix_fits).decode("ascii")
    notice |= _from_classifiers(scan.classifiers)
    return notice
