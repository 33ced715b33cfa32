# SPDX-License-Identifier: Apache-2.0
"""deploy/k8s: each overlay renders with kustomize, every document passes the Kubernetes schema (strict),
and the pieces fit together (probes, security, autoscaling, Ingress routes, settings the hub accepts)."""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from deploy_helpers import DEPLOY

from hub.config import Settings, load_settings

K8S = DEPLOY / "k8s"
CITIES = sorted(path.name for path in (K8S / "overlays").iterdir() if path.is_dir())
# The oldest Kubernetes release still maintained upstream when this was written, and the newest
# the validator knows: the manifests must be valid on both.
VERSIONS = ["1.31.0", kubernetes_validate.latest_version()]

Document = dict[str, Any]
_rendered: dict[Path, list[Document]] = {}


def kustomize(directory: Path) -> list[Document]:
    """`kubectl kustomize DIR` (or `kustomize build DIR`), parsed; cached per directory."""
    if directory not in _rendered:
        kubectl, standalone = shutil.which("kubectl"), shutil.which("kustomize")
        # kubectl has carried kustomize since 1.14 (v5 since 1.27); this machine kind ships one.
        assert kubectl or standalone, "kustomize needs kubectl (1.27 or later) or the kustomize binary"
        command = [kubectl, "kustomize"] if kubectl else [str(standalone), "build"]
        command.append(str(directory))
        rendered = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        assert rendered.returncode == 0, rendered.stderr
        _rendered[directory] = [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]
    return _rendered[directory]


def only(documents: list[Document], kind: str, name: str | None = None) -> Document:
    found = [d for d in documents if d["kind"] == kind and name in (None, d["metadata"]["name"])]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''}"
    return found[0]


def test_three_example_cities() -> None:
    assert CITIES == ["hamburg", "leipzig", "muenchen"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("target", ["base", *CITIES])
def test_every_document_passes_the_schema(target: str, version: str) -> None:
    directory = K8S / "base" if target == "base" else K8S / "overlays" / target
    documents = kustomize(directory)
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Ingress", "ConfigMap", "Secret"} <= kinds
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)


def test_the_validator_rejects_a_misspelt_field() -> None:
    deployment = copy.deepcopy(only(kustomize(K8S / "base"), "Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["paht"] = "/ready"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[-1], strict=True)


@pytest.fixture(params=CITIES)
def city(request: pytest.FixtureRequest) -> tuple[str, list[Document]]:
    return request.param, kustomize(K8S / "overlays" / request.param)


def container(documents: list[Document]) -> Document:
    hub: Document = only(documents, "Deployment", "twinhub")["spec"]["template"]["spec"]["containers"][0]
    return hub


def test_probes_and_resources(city: tuple[str, list[Document]]) -> None:
    hub = container(city[1])
    assert hub["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert hub["livenessProbe"]["httpGet"]["path"] == "/health"
    assert hub["startupProbe"]["httpGet"]["path"] == "/health"
    port_names = {port["name"] for port in hub["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert hub[probe]["httpGet"]["port"] in port_names
    assert {"cpu", "memory"} <= set(hub["resources"]["requests"])
    assert "memory" in hub["resources"]["limits"]


def test_runs_unprivileged_on_a_read_only_root(city: tuple[str, list[Document]]) -> None:
    pod = only(city[1], "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    hub = container(city[1])
    assert hub["securityContext"]["readOnlyRootFilesystem"] is True
    assert hub["securityContext"]["allowPrivilegeEscalation"] is False
    assert hub["securityContext"]["capabilities"]["drop"] == ["ALL"]
    mounts = {mount["mountPath"] for mount in hub["volumeMounts"]}
    assert "/tmp" in mounts


def test_each_replica_has_its_own_mqtt_client_id(city: tuple[str, list[Document]]) -> None:
    env = {item["name"]: item for item in container(city[1])["env"]}
    assert env["TWINHUB_MQTT_CLIENT_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_autoscaler_drives_the_deployment(city: tuple[str, list[Document]]) -> None:
    deployment = only(city[1], "Deployment")
    hpa = only(city[1], "HorizontalPodAutoscaler")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert 2 <= hpa["spec"]["minReplicas"] == deployment["spec"]["replicas"] < hpa["spec"]["maxReplicas"]


def test_services_select_the_hub_pods(city: tuple[str, list[Document]]) -> None:
    pod_labels = only(city[1], "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = only(city[1], "Service", "twinhub")["spec"]["selector"]
    assert selector.items() <= pod_labels.items()
    pdb = only(city[1], "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    assert pdb.items() <= pod_labels.items()


def test_ingress_routes_the_api_and_mqtt_websockets(city: tuple[str, list[Document]]) -> None:
    name, documents = city
    ingress = only(documents, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert name in rule["host"]
    assert rule["host"] in ingress["spec"]["tls"][0]["hosts"]
    routes = {path["path"]: path["backend"]["service"] for path in rule["http"]["paths"]}
    assert set(routes) == {"/", "/mqtt"}
    for backend in routes.values():
        service = only(documents, "Service", backend["name"])
        assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    assert routes["/"]["name"] == "twinhub"
    broker = only(documents, "Service", routes["/mqtt"]["name"])
    assert name in broker["spec"]["externalName"]


def settings_of(documents: list[Document], tmp_path: Path) -> Settings:
    """The Settings a hub pod would load: its ConfigMap, Secret and TOML file, as the pod sees them."""
    hub = container(documents)
    environ: dict[str, str] = {}
    for source in hub["envFrom"]:
        if "configMapRef" in source:
            environ |= only(documents, "ConfigMap", source["configMapRef"]["name"])["data"]
        else:
            environ |= only(documents, "Secret", source["secretRef"]["name"])["stringData"]
    environ["TWINHUB_MQTT_CLIENT_ID"] = "twinhub-7d9f8-abcde"
    pod = only(documents, "Deployment")["spec"]["template"]["spec"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    for mount in hub["volumeMounts"]:
        config_map = volumes[mount["name"]].get("configMap")
        if config_map is not None:
            for file_name, text in only(documents, "ConfigMap", config_map["name"])["data"].items():
                local = tmp_path / mount["mountPath"].strip("/") / file_name
                local.parent.mkdir(parents=True, exist_ok=True)
                local.write_text(text)
    config = environ.pop("TWINHUB_CONFIG", None)
    return load_settings(tmp_path / config.strip("/") if config else None, environ=environ)


def test_every_setting_is_one_the_hub_knows(city: tuple[str, list[Document]], tmp_path: Path) -> None:
    settings_map = only(city[1], "ConfigMap", _settings_name(city[1]))["data"]
    unknown = {key for key in settings_map if key != "TWINHUB_CONFIG"} - {
        f"TWINHUB_{name.upper()}" for name in Settings.model_fields
    }
    assert not unknown
    settings = settings_of(city[1], tmp_path)
    assert settings.http_host == "0.0.0.0"
    assert settings.mqtt_share_group == f"twinhub-{city[0]}"
    ingress_host = only(city[1], "Ingress")["spec"]["rules"][0]["host"]
    assert settings.base_url is not None
    assert urlsplit(settings.base_url).hostname == ingress_host


def _settings_name(documents: list[Document]) -> str:
    names = [d["metadata"]["name"] for d in documents if d["kind"] == "ConfigMap"]
    (name,) = [n for n in names if n.startswith("twinhub-settings-")]
    return name


def test_hamburg_labels_its_datasets(tmp_path: Path) -> None:
    settings = settings_of(kustomize(K8S / "overlays" / "hamburg"), tmp_path)
    assert settings.dataset_labels["serviceName"] == "HH_STA_Klima"


def test_cities_do_not_share_hosts_or_groups(tmp_path: Path) -> None:
    seen: dict[str, set[str]] = {"host": set(), "group": set(), "namespace": set()}
    for name in CITIES:
        documents = kustomize(K8S / "overlays" / name)
        seen["host"].add(only(documents, "Ingress")["spec"]["rules"][0]["host"])
        seen["group"].add(str(settings_of(documents, tmp_path / name).mqtt_share_group))
        seen["namespace"].add(only(documents, "Deployment")["metadata"]["namespace"])
    assert all(len(values) == len(CITIES) for values in seen.values()), seen


def test_database_connections_fit_a_default_postgresql(
    city: tuple[str, list[Document]], tmp_path: Path
) -> None:
    """At the autoscaler's maximum, the pools (plus a migration connection each) fit 90 connections:
    PostgreSQL's default max_connections is 100, some of them reserved for superusers."""
    settings = settings_of(city[1], tmp_path)
    per_replica = settings.db_pool_max + 4 * (settings.ingest_workers - 1) + 1
    most = only(city[1], "HorizontalPodAutoscaler")["spec"]["maxReplicas"] * per_replica
    assert most <= 90, f"{city[0]}: up to {most} connections"
