"""The broker names of a scan: its queues, and (with per-scan broker accounts) its virtual host and user.

The scanner server publishes pixels on `to-clients-<scan_id>` and collects results on
`from-clients-<scan_id>`; whatever cannot be processed (an undecodable or invalid message, a message the
broker gave up redelivering) ends on `dead-letters-<scan_id>`, where the server counts it in the scan's
progress. SkyDriver gives each scan its own virtual host and user (`scan_vhost`, `scan_user`), so a worker
of one scan cannot reach another scan's queues."""

from __future__ import annotations

#: every queue name of a scan starts with one of these (SkyDriver's broker policy matches them)
QUEUE_PREFIXES = ("to-clients-", "from-clients-", "dead-letters-")


def to_clients_queue(scan_id: str) -> str:
    """Pixels to reconstruct (server -> workers)."""
    return f"to-clients-{scan_id}"


def from_clients_queue(scan_id: str) -> str:
    """Reconstructions (workers -> server)."""
    return f"from-clients-{scan_id}"


def dead_letters_queue(scan_id: str) -> str:
    """Messages nobody could process; counted by the server."""
    return f"dead-letters-{scan_id}"


def scan_queues(scan_id: str) -> list[str]:
    return [to_clients_queue(scan_id), from_clients_queue(scan_id), dead_letters_queue(scan_id)]


def scan_vhost(scan_id: str) -> str:
    """The scan's own virtual host (per-scan broker accounts)."""
    return f"skyscan-{scan_id}"


def scan_user(scan_id: str) -> str:
    """The scan's own broker user, allowed only in `scan_vhost(scan_id)`."""
    return f"skyscan-{scan_id}"
