"""Sky products from a scan result: best fit, containment regions, plots and the alert products.

Input everywhere is the SkyScanResult JSON dict (icecube-skyreader's ``serialize()`` format).
Angles passed in are radians; results named ``*_deg`` are degrees.

The alert products (multi-order FITS, regions as GeoJSON and MOC, stats, GCN notice, draft
circular) come from ``products.alert.build_products``; import that module where they are needed
(it brings mocpy and shapely, which this package's top level does not import).
"""

from .contours import (
    LEVEL_3SIGMA,
    LEVEL_50,
    LEVEL_90,
    Region,
    SkyMapSummary,
    angular_distance_deg,
    contains,
    summarize_result,
)
from .multiorder import BestFit, MultiOrderMap, multiorder_from_result

__all__ = [
    "LEVEL_3SIGMA",
    "LEVEL_50",
    "LEVEL_90",
    "BestFit",
    "MultiOrderMap",
    "Region",
    "SkyMapSummary",
    "angular_distance_deg",
    "contains",
    "multiorder_from_result",
    "summarize_result",
]
