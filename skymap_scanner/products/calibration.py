"""The 90 % contour level calibrated on simulation (see bench/accuracy.py and the README).

Wilks' theorem (2ΔLLH = 4.61 for 2 degrees of freedom) assumes a likelihood that is exact; ours (a smooth
Pandel pdf, no unhit-DOM term, a toy-model simulation) is not, so the level that really contains the truth
90 % of the time is measured: the 90th percentile of 2ΔLLH(truth) over simulated events."""

from __future__ import annotations

#: 2ΔLLH that contains the true direction of 90 % of simulated tracks (None until measured).
CALIBRATED_DELTA_LLH_90: float | None = None
#: How it was measured (events, seed, progression, reco), for the record.
CALIBRATION_PROVENANCE = "not measured yet"
