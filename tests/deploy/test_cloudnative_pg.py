# SPDX-License-Identifier: Apache-2.0
"""deploy/k8s/components/cloudnative-pg: a CloudNativePG Cluster (one primary, two standbys) whose
-rw and -ro Services the hub writes to and reads from. Rendered with kustomize like the overlays;
the Kubernetes documents pass the schema, and the Cluster (a custom resource the validator has no
schema for) uses only fields of the operator's API reference (postgresql.cnpg.io/v1)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
from test_kubernetes import K8S, VERSIONS, Document, container, kustomize, only, settings_of

EXAMPLE = K8S / "examples" / "hamburg-cloudnative-pg"

# ClusterSpec fields used here, with their types, from the CloudNativePG API reference
# ("API Reference", postgresql.cnpg.io/v1: ClusterSpec, BootstrapConfiguration, BootstrapInitDB,
# PostgresConfiguration, StorageConfiguration, AffinityConfiguration).
CLUSTER_FIELDS: dict[str, type | tuple[type, ...]] = {
    "description": str,
    "instances": int,
    "primaryUpdateStrategy": str,
    "bootstrap": dict,
    "bootstrap.initdb": dict,
    "bootstrap.initdb.database": str,
    "bootstrap.initdb.owner": str,
    "postgresql": dict,
    "postgresql.parameters": dict,  # map[string]string
    "storage": dict,
    "storage.size": str,
    "walStorage": dict,
    "walStorage.size": str,
    "resources": dict,  # core/v1.ResourceRequirements
    "affinity": dict,
    "affinity.enablePodAntiAffinity": bool,
    "affinity.topologyKey": str,
}
OPAQUE = ("postgresql.parameters", "resources")  # maps whose keys are not CNPG fields
PRIMARY_UPDATE_STRATEGIES = ("unsupervised", "supervised")


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    return kustomize(EXAMPLE)


def _paths(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, item in value.items():
        path = f"{prefix}{key}"
        found[path] = item
        if isinstance(item, dict) and path not in OPAQUE:
            found |= _paths(item, path + ".")
    return found


@pytest.mark.parametrize("version", VERSIONS)
def test_the_kubernetes_documents_pass_the_schema(documents: list[Document], version: str) -> None:
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "Cluster"} <= kinds
    for document in documents:
        if document["apiVersion"].startswith("postgresql.cnpg.io/"):
            continue  # a custom resource: checked against the API reference below
        kubernetes_validate.validate(document, version, strict=True)


def test_the_cluster_has_a_primary_and_two_standbys_and_only_known_fields(documents: list[Document]) -> None:
    cluster = only(documents, "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
    spec = cluster["spec"]
    assert spec["instances"] == 3
    for path, value in _paths(spec).items():
        assert path in CLUSTER_FIELDS, (
            f"Cluster spec.{path} is not a field this test knows from the API reference"
        )
        assert isinstance(value, CLUSTER_FIELDS[path]), f"spec.{path}: {value!r}"
    assert spec["primaryUpdateStrategy"] in PRIMARY_UPDATE_STRATEGIES
    assert all(isinstance(v, str) for v in spec["postgresql"]["parameters"].values()), (
        "parameters are strings"
    )
    hub_namespace = only(documents, "Deployment")["metadata"]["namespace"]
    assert cluster["metadata"]["namespace"] == hub_namespace


def _hub_environ(documents: list[Document], tmp_path: Path) -> tuple[dict[str, Any], Any]:
    env = {item["name"]: item for item in container(documents)["env"]}
    settings = settings_of(documents, tmp_path)
    # `env` entries win over envFrom (the Secret template's TWINHUB_DATABASE_URL).
    overrides = {name: item["value"] for name, item in env.items() if "value" in item}
    values = settings.model_dump() | {k.removeprefix("TWINHUB_").lower(): v for k, v in overrides.items()}
    values["database_read_urls"] = tuple(values["database_read_urls"].split(","))
    return env, type(settings).model_validate(values)


def test_the_hub_writes_to_rw_and_reads_from_ro(documents: list[Document], tmp_path: Path) -> None:
    name = only(documents, "Cluster")["metadata"]["name"]
    env, settings = _hub_environ(documents, tmp_path)
    assert urlsplit(settings.database_url).hostname == f"{name}-rw"
    assert [urlsplit(url).hostname for url in settings.database_read_urls] == [f"{name}-ro"]
    assert (
        urlsplit(settings.database_url).path
        == "/" + only(documents, "Cluster")["spec"]["bootstrap"]["initdb"]["database"]
    )
    # No password in a URL: the driver takes user and password from the operator's app Secret.
    for variable, key in (("PGUSER", "username"), ("PGPASSWORD", "password")):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": f"{name}-app", "key": key}
    assert urlsplit(settings.database_url).password is None


def test_connections_fit_the_primary_and_each_standby(documents: list[Document], tmp_path: Path) -> None:
    _, settings = _hub_environ(documents, tmp_path)
    limit = int(only(documents, "Cluster")["spec"]["postgresql"]["parameters"]["max_connections"])
    pods = only(documents, "HorizontalPodAutoscaler")["spec"]["maxReplicas"]
    reserved = 10  # superuser_reserved_connections, the operator's own and a margin
    assert pods * (settings.db_pool_max + 1) <= limit - reserved  # the primary: pools + migrations
    assert pods * settings.db_pool_max <= limit - reserved  # one standby, if -ro sends all reads there
