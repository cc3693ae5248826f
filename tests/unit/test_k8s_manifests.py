"""The manifests in k8s/: every document loads into the official model class of its kind and serialises back
to the same document (so a misspelt or misplaced field fails), the kustomizations are complete, the RBAC
Roles grant exactly what the launcher and the worker backend call, and the config names real settings.
No cluster: `kubectl kustomize` (a local build) is used only where installed."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.client import ApiClient

from skydriver.launch.k8s_objects import to_dict
from skydriver.launch.k8s_settings import K8sLauncherSettings
from skydriver.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "test-cluster"

Doc = dict[str, Any]


def load_docs(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")


def kustomizations() -> list[Path]:
    return sorted(K8S.rglob("kustomization.yaml"))


def to_model(doc: Doc) -> Any:
    """The document as its official model (`V1<Kind>`), through the client's own deserializer."""
    name = f"V1{doc['kind']}"
    return ApiClient().deserialize(json.dumps(doc), name, "application/json")


def round_trips(doc: Doc) -> bool:
    return bool(to_dict(to_model(doc)) == doc)


def base_docs() -> list[Doc]:
    kz = load_docs(BASE / "kustomization.yaml")[0]
    return [d for r in kz["resources"] for d in load_docs(BASE / r)]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


# ---------------------------------------------------------------- every document is a valid object


def test_there_are_manifests() -> None:
    kinds = {d["kind"] for d in base_docs()}
    assert kinds == {
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ResourceQuota",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "Ingress",
        "StatefulSet",
    }


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: str(p.relative_to(K8S)))
def test_every_document_loads_into_its_model_and_back(path: Path) -> None:
    docs = load_docs(path)
    assert docs, f"{path} is empty"
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind"), f"{path}: apiVersion/kind missing"
        assert doc["metadata"].get("name"), f"{path}: a {doc['kind']} without a name"
        model = to_model(doc)
        assert type(model).__name__ == f"V1{doc['kind']}"
        assert to_dict(model) == doc, f"{path}: {doc['kind']} changes through the model"


def test_the_round_trip_catches_a_misspelt_field() -> None:
    doc = copy.deepcopy(find(base_docs(), "Deployment", "skydriver"))
    assert round_trips(doc)
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    assert not round_trips(doc)
    doc = copy.deepcopy(find(base_docs(), "Deployment", "skydriver"))
    doc["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = 2  # not "2"
    with pytest.raises(Exception, match="string"):
        to_model(doc)


# ---------------------------------------------------------------- kustomizations


@pytest.mark.parametrize("path", kustomizations(), ids=lambda p: str(p.parent.relative_to(K8S)))
def test_kustomization_resources_exist(path: Path) -> None:
    kz = load_docs(path)[0]
    assert kz["kind"] == "Kustomization"
    for res in kz.get("resources", []):
        target = path.parent / res
        assert target.is_file() or (target / "kustomization.yaml").is_file(), res
    listed = {(path.parent / r).resolve() for r in kz.get("resources", [])}
    for f in path.parent.glob("*.yaml"):
        if f.name != "kustomization.yaml":
            assert f.resolve() in listed, f"{f.name} is not in {path}"


def apply_json_patch(doc: Doc, ops: list[Doc]) -> Doc:
    """The JSON-patch subset the overlay uses (add, replace, remove on objects and list indexes)."""
    out = copy.deepcopy(doc)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = out
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        key: Any = int(parts[-1]) if isinstance(parent, list) else parts[-1]
        if op["op"] == "replace":
            assert key in parent if isinstance(parent, dict) else key < len(parent), op
            parent[key] = op["value"]
        elif op["op"] == "add":
            parent[key] = op["value"]
        elif op["op"] == "remove":
            del parent[key]
        else:
            raise AssertionError(f"unsupported op {op}")
    return out


def overlay_docs() -> list[Doc]:
    kz = load_docs(OVERLAY / "kustomization.yaml")[0]
    assert kz["resources"] == ["../../base"]
    docs = base_docs()
    for patch in kz["patches"]:
        target = patch["target"]
        doc = find(docs, target["kind"], target["name"])
        docs[docs.index(doc)] = apply_json_patch(doc, yaml.safe_load(patch["patch"]))
    return docs


def test_overlay_patches_hit_existing_objects_and_stay_valid() -> None:
    for doc in overlay_docs():
        assert round_trips(doc), doc["metadata"]["name"]


def test_overlay_is_small_with_one_replica() -> None:
    docs = overlay_docs()
    for kind, name in [
        ("Deployment", "skydriver"),
        ("StatefulSet", "mongodb"),
        ("StatefulSet", "rabbitmq"),
    ]:
        spec = find(docs, kind, name)["spec"]
        assert spec["replicas"] == 1
        limits = spec["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert limits["memory"] in ("512Mi",) and limits["cpu"] == "500m"
    quota = find(docs, "ResourceQuota", "skydriver-job-quota")["spec"]["hard"]
    assert quota == {"count/jobs.batch": "10"}
    data = find(docs, "ConfigMap", "skydriver-config")["data"]
    cfg = K8sLauncherSettings(
        **{
            k.removeprefix("SKYDRIVER_K8S_").lower(): v
            for k, v in data.items()
            if k.startswith("SKYDRIVER_K8S_")
        }
    )
    assert cfg.scanner_cpu_limit == 0.5 and cfg.image_pull_policy == "Never"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
@pytest.mark.parametrize("path", [BASE, OVERLAY], ids=["base", "test-cluster"])
def test_kustomize_builds(path: Path) -> None:
    out = subprocess.run(
        ["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert len(docs) == len(base_docs())
    for doc in docs:
        assert doc["metadata"]["namespace"] == "skydriver"
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "skydriver"
        to_model(doc)  # loads (kustomize reorders keys and may add labels)


# ---------------------------------------------------------------- RBAC


def rules(role: Doc) -> set[tuple[str, str, str]]:
    return {
        (group, res, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for res in rule["resources"]
        for verb in rule["verbs"]
    }


def test_skydriver_may_run_jobs_and_give_each_its_own_secret() -> None:
    role = find(base_docs(), "Role", "skydriver-launcher")
    assert rules(role) == {
        *(("batch", "jobs", v) for v in ("create", "get", "list", "delete")),
        ("", "secrets", "create"),  # the scan's own Secret
        ("", "secrets", "update"),  # replaced by a retried start
    }


def test_scan_instances_may_do_what_the_worker_backend_needs() -> None:
    role = find(base_docs(), "Role", "skyscan-instance")
    assert rules(role) == {
        *(("batch", "jobs", v) for v in ("create", "get", "patch", "delete")),
        *(("", "configmaps", v) for v in ("create", "get", "delete")),
        ("", "pods", "get"),
        ("", "pods", "list"),
    }


# the API calls our code makes -> the (group, resource, verb) they need
JOB_CALLS = {
    "create_namespaced_job": ("batch", "jobs", "create"),
    "read_namespaced_job": ("batch", "jobs", "get"),
    "delete_namespaced_job": ("batch", "jobs", "delete"),
}
LAUNCHER_CALLS = {
    **JOB_CALLS,
    "create_namespaced_secret": ("", "secrets", "create"),
    "replace_namespaced_secret": ("", "secrets", "update"),
}
BACKEND_CALLS = {
    **JOB_CALLS,
    "patch_namespaced_job": ("batch", "jobs", "patch"),
    "create_namespaced_config_map": ("", "configmaps", "create"),
    "delete_namespaced_config_map": ("", "configmaps", "delete"),
    "list_namespaced_pod": ("", "pods", "list"),
}


def test_roles_cover_every_call_the_code_makes() -> None:
    import inspect

    from client_manager.backends import k8s as backend_mod
    from skydriver.launch import k8s as launcher_mod

    for module, calls, role_name in [
        (launcher_mod, LAUNCHER_CALLS, "skydriver-launcher"),
        (backend_mod, BACKEND_CALLS, "skyscan-instance"),
    ]:
        source = inspect.getsource(module)
        used = {m for m in calls if f".{m}," in source or f".{m}(" in source}
        assert used, module
        granted = rules(find(base_docs(), "Role", role_name))
        for method in used:
            assert calls[method] in granted, (role_name, method)
        # and nothing the code does not call (other than `list`, kept for operators/reconcile)
        needed = {calls[m] for m in used}
        assert granted - needed <= {
            ("batch", "jobs", "list"),
            ("", "pods", "get"),
            ("", "configmaps", "get"),
        }


def test_bindings_and_service_accounts_match() -> None:
    docs = base_docs()
    accounts = {d["metadata"]["name"] for d in docs if d["kind"] == "ServiceAccount"}
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        find(docs, "Role", binding["roleRef"]["name"])
        for subject in binding["subjects"]:
            assert subject["kind"] == "ServiceAccount" and subject["name"] in accounts
    deploy = find(docs, "Deployment", "skydriver")["spec"]["template"]["spec"]
    assert deploy["serviceAccountName"] == "skydriver"
    data = find(docs, "ConfigMap", "skydriver-config")["data"]
    assert data["SKYDRIVER_K8S_SCAN_SERVICE_ACCOUNT"] in accounts
    assert find(docs, "ResourceQuota", "skydriver-job-quota")["spec"]["hard"]["count/jobs.batch"]


# ---------------------------------------------------------------- config and secrets


def test_config_names_real_settings_with_valid_values(monkeypatch: pytest.MonkeyPatch) -> None:
    from skydriver.auth import AuthSettings

    data = find(base_docs(), "ConfigMap", "skydriver-config")["data"]
    for key in data:
        if key.startswith("SKYDRIVER_K8S_"):
            assert key.removeprefix("SKYDRIVER_K8S_").lower() in K8sLauncherSettings.model_fields
        elif key.startswith("SKYDRIVER_AUTH_"):
            assert key.removeprefix("SKYDRIVER_AUTH_").lower() in AuthSettings.model_fields
        else:
            assert key.removeprefix("SKYDRIVER_").lower() in Settings.model_fields, key
    for key, value in data.items():
        monkeypatch.setenv(key, value)
    assert K8sLauncherSettings().worker_backend == "k8s"
    assert Settings().launcher == "k8s"


def test_secret_is_a_template_and_every_reference_resolves() -> None:
    docs = base_docs()
    secret = find(docs, "Secret", "skydriver-secrets")
    assert secret["stringData"] and all("PLACEHOLDER" in v for v in secret["stringData"].values())
    assert "data" not in secret
    refs = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                refs.append(node["secretKeyRef"])
            if "secret" in node and isinstance(node["secret"], dict):  # a Secret volume
                for item in node["secret"].get("items") or []:
                    refs.append({"name": node["secret"]["secretName"], "key": item["key"]})
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(docs)
    assert refs
    for ref in refs:
        assert ref["name"] == "skydriver-secrets" and ref["key"] in secret["stringData"], ref
    # no placeholder credential leaks outside the Secret
    others = json.dumps([d for d in docs if d["kind"] != "Secret"])
    for value in secret["stringData"].values():
        assert value not in others


def test_images_are_pinned() -> None:
    for doc in base_docs():
        if doc["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for c in doc["spec"]["template"]["spec"]["containers"]:
            name, _, tag = c["image"].rpartition(":")
            assert name and tag and tag != "latest", c["image"]


def skydriver_pod() -> Doc:
    spec: Doc = find(base_docs(), "Deployment", "skydriver")["spec"]["template"]["spec"]
    return spec


def test_skydriver_probes_use_the_unauthenticated_health_route() -> None:
    from skydriver.rest.routes import ROUTES

    (container,) = skydriver_pod()["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, probe
    assert any(route[0] == "/healthz" for route in ROUTES)


def test_skydriver_gets_the_broker_administrator_for_per_scan_accounts() -> None:
    """Per-scan vhosts and users are made through RabbitMQ's management API: its URL and user in the
    ConfigMap, the password by Secret reference, and the management port on the RabbitMQ Service."""
    docs = base_docs()
    data = find(docs, "ConfigMap", "skydriver-config")["data"]
    assert data["SKYDRIVER_BROKER_MANAGEMENT_URL"] == "http://rabbitmq.skydriver.svc:15672"
    assert data["SKYDRIVER_BROKER_MANAGEMENT_USER"] == "skydriver"
    (container,) = skydriver_pod()["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["SKYDRIVER_BROKER_MANAGEMENT_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "skydriver-secrets",
        "key": "broker-admin-password",
    }
    ports = {p["name"]: p["port"] for p in find(docs, "Service", "rabbitmq")["spec"]["ports"]}
    assert ports["management"] == 15672
    rabbit = find(docs, "StatefulSet", "rabbitmq")["spec"]["template"]["spec"]["containers"][0]
    rabbit_env = {e["name"]: e for e in rabbit["env"]}
    assert rabbit_env["RABBITMQ_DEFAULT_USER"]["value"] == data["SKYDRIVER_BROKER_MANAGEMENT_USER"]
    assert rabbit_env["RABBITMQ_DEFAULT_PASS"]["valueFrom"]["secretKeyRef"]["key"] == (
        "broker-admin-password"
    )


def test_the_signing_key_reaches_skydriver_readable_by_its_user_only() -> None:
    """A Secret volume is group-readable (0440) in a pod with an fsGroup, which SkyDriver refuses for its
    signing key: an init container copies it 0600 into a memory volume, where SkyDriver reads it."""
    pod = skydriver_pod()
    assert pod["securityContext"].get("fsGroup") is not None  # the reason for the copy
    (init,) = pod["initContainers"]
    (container,) = pod["containers"]
    data = find(base_docs(), "ConfigMap", "skydriver-config")["data"]
    key_file = data["SKYDRIVER_AUTH_KEY_FILE"]
    key_dir = key_file.rpartition("/")[0]
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounted = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert volumes[mounted[key_dir]]["emptyDir"]["medium"] == "Memory"
    assert init["command"][:3] == ["install", "-m", "0600"] and init["command"][-1] == key_file
    init_mounts = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}
    source_dir = init["command"][-2].rpartition("/")[0]
    assert "secret" in volumes[init_mounts[source_dir]]
    assert init_mounts[key_dir] == mounted[key_dir]
    assert init["image"] == container["image"]
