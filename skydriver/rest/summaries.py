"""Scan summaries for the dashboard (and anyone who wants a compact view): the list of the newest scans and
one scan's detail (state and its meaning, per-nside progress, rate and ETA range, workforce)."""

from __future__ import annotations

from skyscan_contract.errors import InvalidRequest

from ..auth import Role, requires
from ..dashboard import summary
from .base import BaseHandler
from .openapi import Op

DEFAULT_LIMIT = 500


class ScanSummariesHandler(BaseHandler):
    API = {
        "get": Op(
            "The newest scans, one summary row each (state, event, reco, nsides, progress, "
            "classifiers), and the last event id before they were read",
            query=("limit", "include_deleted_scans"),
        )
    }

    @requires(Role.USER)
    async def get(self) -> None:
        raw = self.get_query_argument("limit", str(DEFAULT_LIMIT))
        cap = self.ctx.settings.find_max_results
        if not raw.isdigit() or not 1 <= int(raw) <= cap:
            raise InvalidRequest(f"'limit': must be an integer from 1 to {cap}, got {raw!r}")
        answer = await self.ctx.scan_list.newest(int(raw), self.bool_arg("include_deleted_scans"))
        self.send(answer)


class ScanSummaryHandler(BaseHandler):
    API = {
        "get": Op(
            "One scan's summary: state and its meaning, per-nside progress, measured rate and ETA "
            "range, workforce",
            query=("no_redirect",),
            responses={404: "unknown scan"},
        )
    }

    @requires(Role.USER)
    async def get(self, scan_id: str) -> None:
        if await self.redirected(scan_id, max_age_s=summary.MAX_AGE_S):
            return
        scans = self.ctx.scans
        manifest = await scans.get_manifest_cached(
            scan_id, include_deleted=True, max_age_s=summary.MAX_AGE_S
        )
        final = bool(await scans.final_among([scan_id]))
        self.send(
            {
                **summary.detail(manifest, final),
                "last_event_id": await scans.events.last_seq(),
            }
        )
