"""The full-sky and the zoom plot share one colour convention and quote the calibrated area."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from matplotlib.axes import Axes

from skymap_scanner.products.contours import summarize_result
from skymap_scanner.products.plots import COLORMAP, plot_full_sky, plot_zoom
from tests.unit.test_products import make_result


def test_one_colour_map_and_calibrated_area_in_titles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Any] = []
    titles: list[str] = []
    draw = Axes.pcolormesh

    def record(self: Axes, *args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs.get("cmap"))
        return draw(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "pcolormesh", record)
    summary = summarize_result(make_result(), calibrated_delta_llh_90=17.33)
    figure_title = Axes.set_title

    def keep_title(self: Axes, label: str, *args: Any, **kwargs: Any) -> Any:
        titles.append(label)
        return figure_title(self, label, *args, **kwargs)

    monkeypatch.setattr(Axes, "set_title", keep_title)
    plot_full_sky(summary, tmp_path / "full.png", resolution_deg=4.0)
    plot_zoom(summary, tmp_path / "zoom.png", n_grid=51)
    assert [c for c in seen if isinstance(c, str)] == [COLORMAP, COLORMAP]  # (colorbars: objects)
    assert summary.region_90_calibrated is not None
    expected = f"calibrated 90 %: {summary.region_90_calibrated.area_deg2:.2f} deg²"
    assert titles and expected in titles[0]
