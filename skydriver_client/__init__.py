"""SkyDriver's Python client: launch skymap scans, follow them, fetch their results.

```python
from skydriver_client import Client

with Client("http://127.0.0.1:8080", token=None) as sd:
    scan = sd.launch("event.json", real_event=True, nsides="1:0 2:12", cluster="local:2")
    status = sd.wait(scan.scan_id, on_progress=lambda p: print(p.pixels_done, p.pixels_generated))
    sky = sd.result(scan.scan_id)  # skyreader.SkyScanResult
```

`AsyncClient` has the same methods, awaited. Every error is a `SkyDriverError`; the tree is in
`skydriver_client/_errors.py`. The command line (`skydriver scan ...`) is in `skydriver_client/_cli.py`.
"""

from skyscan_contract.errors import (
    Forbidden,
    InvalidEvent,
    InvalidRequest,
    PayloadTooLarge,
    ScanConflict,
    ScanNotFound,
    SkyDriverError,
)

from ._client import AsyncClient, Client
from ._errors import (
    ResultNotReady,
    ScanFailed,
    ServerError,
    ServiceUnavailable,
    UnexpectedResponse,
    WaitTimeout,
)
from ._models import Manifest, NSideProgress, ScanProgress, ScanRequest, ScanStatus, Workforce

__all__ = [
    "AsyncClient",
    "Client",
    "Forbidden",
    "InvalidEvent",
    "InvalidRequest",
    "Manifest",
    "NSideProgress",
    "PayloadTooLarge",
    "ResultNotReady",
    "ScanConflict",
    "ScanFailed",
    "ScanNotFound",
    "ScanProgress",
    "ScanRequest",
    "ScanStatus",
    "ServerError",
    "ServiceUnavailable",
    "SkyDriverError",
    "UnexpectedResponse",
    "WaitTimeout",
    "Workforce",
]
