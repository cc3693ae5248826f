"""The calibrated 90 % level (re-exported from :mod:`skymap_scanner.calibration`, where it lives so that
the scanner server can use it without importing the skymap products)."""

from ..calibration import (
    CALIBRATED_DELTA_LLH_90,
    CALIBRATION_90,
    CALIBRATION_PROVENANCE,
    QUANTILE_90,
    LevelModel,
    calibrated_level_90,
    fit_level_model,
)

__all__ = [
    "CALIBRATED_DELTA_LLH_90",
    "CALIBRATION_90",
    "CALIBRATION_PROVENANCE",
    "QUANTILE_90",
    "LevelModel",
    "calibrated_level_90",
    "fit_level_model",
]
