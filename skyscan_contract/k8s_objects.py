"""Pure builders shared by every Kubernetes object a scan makes (the scan Job of SkyDriver's launcher, the
worker Job and ConfigMap of the client manager's backend): DNS-safe names, labels, environment variables
(plain, from a Secret, from the pod's own metadata), restricted security contexts and resources.

Pure functions over the official client's models: no API call, no cluster needed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from kubernetes.client import (
    V1Capabilities,
    V1EnvVar,
    V1EnvVarSource,
    V1ObjectFieldSelector,
    V1PodSecurityContext,
    V1ResourceRequirements,
    V1SeccompProfile,
    V1SecretKeySelector,
    V1SecurityContext,
)

from .instance import EnvValue, FieldRef, SecretRef

LABEL_SCAN_ID = "skydriver/scan-id"
ANNOTATION_SCAN_ID = "skydriver/scan-id"
MAX_NAME_LEN = 63  # a Job name is also the value of its pods' `job-name` label

_NOT_DNS = re.compile(r"[^a-z0-9-]+")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def _digest(value: str, n: int = 8) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:n]


def dns_name(prefix: str, value: str, max_len: int = MAX_NAME_LEN) -> str:
    """`<prefix><value>` as a DNS-1123 label of at most `max_len` characters.

    Kept as is when already valid; otherwise lower-cased, invalid runs replaced by '-', cut, and given a
    hash suffix of the original value so that two different values never share a name."""
    raw = f"{prefix}{value}"
    if (
        len(raw) <= max_len
        and _NOT_DNS.sub("", raw) == raw
        and raw[0].isalnum()
        and raw[-1].isalnum()
    ):
        return raw
    slug = _NOT_DNS.sub("-", raw.lower()).strip("-")
    suffix = _digest(value)
    head = slug[: max_len - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}" if head else f"x-{suffix}"


def label_value(value: str) -> str:
    """`value` if it is a valid label value, else a valid one derived from it (with a hash suffix)."""
    if _LABEL_VALUE.match(value):
        return value
    return dns_name("", value)


def cpu_quantity(cores: float) -> str:
    """0.1 -> '100m', 1.0 -> '1'."""
    millis = round(cores * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def env_var(name: str, value: EnvValue) -> V1EnvVar:
    """One container variable: a plain value, a Secret key by reference (the value never appears in the
    object), or a field of the pod's own metadata (downward API)."""
    if isinstance(value, SecretRef):
        return V1EnvVar(
            name=name,
            value_from=V1EnvVarSource(
                secret_key_ref=V1SecretKeySelector(name=value.secret, key=value.key, optional=False)
            ),
        )
    if isinstance(value, FieldRef):
        return V1EnvVar(
            name=name,
            value_from=V1EnvVarSource(field_ref=V1ObjectFieldSelector(field_path=value.path)),
        )
    return V1EnvVar(name=name, value=value)


def env_vars(env: Mapping[str, EnvValue]) -> list[V1EnvVar]:
    return [env_var(name, value) for name, value in env.items()]


def restricted_container_security() -> V1SecurityContext:
    return V1SecurityContext(
        allow_privilege_escalation=False,
        capabilities=V1Capabilities(drop=["ALL"]),
        run_as_non_root=True,
    )


def restricted_pod_security() -> V1PodSecurityContext:
    return V1PodSecurityContext(
        run_as_non_root=True, seccomp_profile=V1SeccompProfile(type="RuntimeDefault")
    )


def resources(
    *, cpu_request: float, cpu_limit: float, memory_bytes: int, storage_bytes: int | None = None
) -> V1ResourceRequirements:
    """Memory and ephemeral storage with request = limit (no overcommit); CPU request <= limit."""
    requests = {"cpu": cpu_quantity(cpu_request), "memory": str(memory_bytes)}
    limits = {"cpu": cpu_quantity(cpu_limit), "memory": str(memory_bytes)}
    if storage_bytes is not None:
        requests["ephemeral-storage"] = str(storage_bytes)
        limits["ephemeral-storage"] = str(storage_bytes)
    return V1ResourceRequirements(requests=requests, limits=limits)
