"""The dashboard's HEALPix port (static/healpix.js, run by node) against healpy, pixel by pixel; its colour table
against matplotlib; the levels it draws against the products' constants."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

STATIC = Path(__file__).resolve().parents[2] / "skydriver" / "dashboard" / "static"
NODE = shutil.which("node")


def run_node(script: str) -> object:
    if NODE is None:
        pytest.fail(
            "node is needed (Debian's nodejs; scripts/setup.sh installs npm, which brings it)"
        )
    out = subprocess.run(
        [NODE, "--input-type=module"],
        input=script,
        capture_output=True,
        text=True,
        check=True,
        cwd=STATIC,
        timeout=120,
    )
    return json.loads(out.stdout)


def test_pix2ang_and_ang2pix_match_healpy() -> None:
    import healpy

    rng = np.random.default_rng(7)
    nsides = [1, 2, 4, 8, 64, 512, 8192]
    # every pixel of the small maps, random ones of the large
    pixels = {
        n: list(range(12 * n * n)) if n <= 64 else rng.integers(0, 12 * n * n, 3000).tolist()
        for n in nsides
    }
    theta = np.arccos(rng.uniform(-1, 1, 4000))
    phi = rng.uniform(0, 2 * np.pi, 4000)
    # plus directions on ring boundaries, the poles and phi = 0 / 2π, where rounding bites
    theta = np.concatenate([theta, [0.0, np.pi, np.arccos(2 / 3), np.arccos(-2 / 3), np.pi / 2]])
    phi = np.concatenate([phi, [0.0, 0.0, 2 * np.pi - 1e-12, 0.0, np.pi]])
    script = f"""
import {{ pix2ang, ang2pix }} from "./healpix.js";
const pixels = {json.dumps({str(k): v for k, v in pixels.items()})};
const theta = {json.dumps(theta.tolist())};
const phi = {json.dumps(phi.tolist())};
const out = {{ centres: {{}}, pix: {{}} }};
for (const [n, list] of Object.entries(pixels)) {{
  out.centres[n] = list.map((p) => pix2ang(Number(n), p));
  out.pix[n] = theta.map((t, i) => ang2pix(Number(n), t, phi[i]));
}}
console.log(JSON.stringify(out));
"""
    got = run_node(script)
    assert isinstance(got, dict)
    for n in nsides:
        centres = np.array(got["centres"][str(n)])
        want_t, want_p = healpy.pix2ang(n, np.array(pixels[n]))
        np.testing.assert_allclose(centres[:, 0], want_t, atol=1e-12, err_msg=f"theta, nside {n}")
        np.testing.assert_allclose(centres[:, 1], want_p, atol=1e-12, err_msg=f"phi, nside {n}")
        want_pix = healpy.ang2pix(n, theta, phi)
        assert got["pix"][str(n)] == want_pix.tolist(), f"ang2pix differs at nside {n}"


def test_colour_table_is_current() -> None:
    import sys

    sys.path.insert(0, str(STATIC.parents[2] / "scripts"))
    try:
        from dashboard_colormap import OUT, render  # type: ignore[import-not-found]
    finally:
        sys.path.pop(0)
    assert OUT.read_text() == render(), "run: .venv/bin/python scripts/dashboard_colormap.py"
    first_last = run_node(
        'import { VIRIDIS } from "./colormap.js"; console.log(JSON.stringify([VIRIDIS[0], VIRIDIS[255], VIRIDIS.length]));'
    )
    assert first_last == [[68, 1, 84], [253, 231, 37], 256]


def test_levels_are_the_products_constants() -> None:
    from skydriver.dashboard.levels import levels
    from skymap_scanner.products.calibration import CALIBRATED_DELTA_LLH_90
    from skymap_scanner.products.contours import LEVEL_3SIGMA, LEVEL_50, LEVEL_90

    got = levels()
    assert got["wilks_50"] == LEVEL_50 == 1.39
    assert got["wilks_90"] == LEVEL_90 == 4.61
    assert got["calibrated_90"] == CALIBRATED_DELTA_LLH_90
    assert got["colour_max"] == max(2 * LEVEL_3SIGMA, CALIBRATED_DELTA_LLH_90)


def test_levels_reader_fails_loudly(tmp_path: Path) -> None:
    from skydriver.dashboard.levels import LevelsError, read_constant

    module = tmp_path / "m.py"
    module.write_text("from x import y\nA: float = 1.5\nB = y * 2\n")
    assert read_constant(module, "A") == 1.5
    with pytest.raises(LevelsError, match="not a literal"):
        read_constant(module, "B")
    with pytest.raises(LevelsError, match="defines no C"):
        read_constant(module, "C")


def test_skydriver_does_not_import_the_products() -> None:
    """Reading the levels executes nothing of skymap_scanner.products (it would bring healpy)."""
    code = (
        "import sys; from skydriver.dashboard.levels import levels; levels(); "
        "import skydriver.app; "
        "print(sorted(m for m in sys.modules if m.startswith(('skymap_scanner.products', 'healpy', 'matplotlib'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
