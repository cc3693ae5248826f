"""Scanner versions this deployment can run, and `docker_tag` resolution as the original's (strip a leading
`v`; an exact tag; `latest` → newest X.Y.Z; `X` / `X.Y` → newest X.Y.Z with that prefix)."""

from __future__ import annotations

import re

from skyscan_contract.errors import InvalidRequest

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def _key(tag: str) -> tuple[int, int, int]:
    match = _SEMVER.match(tag)
    assert match
    return int(match[1]), int(match[2]), int(match[3])


def resolve_docker_tag(tag: str, available: list[str], minimum: str | None = None) -> str:
    """The concrete tag to run; InvalidRequest('argument docker_tag: ...') if there is none."""
    wanted = tag.strip().removeprefix("v")
    tags = [t.removeprefix("v") for t in available]
    releases = sorted((t for t in tags if _SEMVER.match(t)), key=_key)
    if wanted in tags:
        resolved = wanted
    elif wanted == "latest" and releases:
        resolved = releases[-1]
    elif re.fullmatch(r"\d+(\.\d+)?", wanted):
        matching = [t for t in releases if t.startswith(wanted + ".")]
        if not matching:
            raise InvalidRequest("argument docker_tag: image not found")
        resolved = matching[-1]
    else:
        raise InvalidRequest("argument docker_tag: image not found")
    if minimum and _SEMVER.match(resolved) and _key(resolved) < _key(minimum.removeprefix("v")):
        raise InvalidRequest(
            "argument docker_tag: Image tag is older than the minimum supported tag "
            f"'{minimum}'. Contact admins for more info."
        )
    return resolved
