"""Type aliases shared by the client modules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import httpx

#: an event: a parsed JSON object, JSON text, or the path of a JSON file (a `str` not starting with `{`)
EventInput: TypeAlias = Mapping[str, Any] | str | Path
#: nside progression: `"8:0 64:12 512:24"` or `{8: 0, 64: 12, 512: 24}`
NSidesInput: TypeAlias = str | Mapping[int | str, int]
#: worker clusters: `"local:2"`, `"osg:100 local:2"`, `{"local": 2}` or `[("local", 2)]`
ClustersInput: TypeAlias = str | Mapping[str, int] | Sequence[tuple[str, int]]
#: seconds for every phase, an `httpx.Timeout`, or None for no timeout at all
TimeoutInput: TypeAlias = float | httpx.Timeout | None
#: a MongoDB query on manifests, e.g. `{"event_metadata.run_id": 138632}`
Filter: TypeAlias = Mapping[str, Any]
