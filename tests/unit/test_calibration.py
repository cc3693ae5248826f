"""The energy-dependent calibrated 90 % level: the quantile regression recovers a known quantile
function, and the model is clipped to the calibrated brightness range."""

from __future__ import annotations

import math

import numpy as np
import pytest

from skymap_scanner.calibration import (
    CALIBRATION_90,
    LevelModel,
    calibrated_level_90,
    fit_level_model,
)


def test_quantile_regression_recovers_the_90_percent_level() -> None:
    """2ΔLLH(truth) ~ scale(E) * chi2(2 dof) / 2 with scale growing as E^0.3: the 90 % quantile is
    scale * 4.61 / 2, and the fitted level must track it (not one level for all energies)."""
    rng = np.random.default_rng(1)
    log_e = rng.uniform(3.0, 7.0, 4000)
    scale = 10 ** (0.3 * (log_e - 3.0))
    delta2 = scale * rng.chisquare(2, log_e.size) / 2.0
    model = fit_level_model(10**log_e, delta2)
    assert model is not None
    for x in (3.5, 5.0, 6.5):
        want = 10 ** (0.3 * (x - 3.0)) * 4.61 / 2.0
        assert model.level(10**x) == pytest.approx(want, rel=0.12)
    # the coverage of the fitted level is 90 % in each energy band
    levels = np.array([model.level(10**x) for x in log_e])
    for lo in (3.0, 4.0, 5.0, 6.0):
        band = (log_e >= lo) & (log_e < lo + 1.0)
        assert float(np.mean(delta2[band] <= levels[band])) == pytest.approx(0.9, abs=0.04)


def test_level_is_clipped_and_defined_for_every_event() -> None:
    model = LevelModel(alpha=math.log(2.0), beta=0.5, level_min=4.0, level_max=50.0)
    assert model.level(1.0) == 4.0  # below the calibrated range
    assert model.level(1e12) == 50.0
    assert model.level(math.nan) == 50.0  # no brightness: the widest level
    assert calibrated_level_90(1e4) == CALIBRATION_90.level(1e4)
    assert fit_level_model(np.ones(5), np.ones(5)) is None
