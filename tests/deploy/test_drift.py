"""docker-compose.yml and the Kubernetes manifests name every service, port and environment variable the code
reads, and nothing the code no longer reads: a new setting or service fails here until the deployment has it."""

from __future__ import annotations

import re
from typing import Any

from deploy_files import (
    IMAGE,
    NOT_FOR_DEPLOYMENTS,
    OVERLAYS,
    compose,
    environ_reads,
    kustomize,
    service_ports,
    settings_variables,
)

# Variables a deployment sets for itself, not read by the code: the pieces a Kubernetes env value is built from.
HELPER = re.compile(r"^(([A-Z]+_)?(OWNER_)?DB_PASSWORD|ADMIN_(USER|PASSWORD))$")
# The audit log's signing keys: a deployment sets one of these (compose the environment secret, Kubernetes the file).
SIGNING_KEY_SOURCES = {"AUDIT_SIGNING_KEYS", "AUDIT_SIGNING_KEY_FILE"}
# Read by the code, but alternatives a deployment does not use: one URL for every service, the maps a process
# running several services takes (the tests), and the signing key source it does not use.
ALTERNATIVES = {"DATABASE_URL", "DATABASE_URLS", "MIGRATION_DATABASE_URL", "MIGRATION_DATABASE_URLS",
                "DATABASE_READ_URL", "DATABASE_READ_URLS", *SIGNING_KEY_SOURCES}
# Set only where there is a streaming replica to read (Kubernetes: CloudNativePG's povguard-db-ro, for the services
# whose lists and reports use it); unset, those queries read the primary (docker-compose.yml has no replica).
WHERE_A_REPLICA_IS = {"{SERVICE}_DATABASE_READ_URL"}
# Optional settings a production deployment leaves unset (set, they change behaviour: a fixed campaign day; a
# development key's place). The compose file cannot set a variable to "unset", so these are named, commented, in
# .env.example and the ConfigMap.
UNSET_IN_PRODUCTION = {"CAMPAIGN_TODAY", "AUDIT_DATA_DIR"}
# Only the migration job's: the superuser that provisions, and the owners that migrate.
JOB_ONLY = {"ADMIN_DATABASE_URL", "{SERVICE}_MIGRATION_DATABASE_URL"}


def _expand(names: set[str], service: str) -> set[str]:
    return {n.replace("{SERVICE}", service.upper()) for n in names}


def required(service: str) -> set[str]:
    """What a deployment of `service` must set: the platform's settings, the service's own settings classes, its
    own database URL (its runtime role), and HOST/PORT of `povguard-serve`; no other service's URL, no owner's."""
    every = settings_variables()
    names = set(every["povguard_platform.settings:Settings"])
    names |= {n for cls, found in every.items() if cls.startswith(f"povguard_{service}.") for n in found}
    names |= _expand(environ_reads() - NOT_FOR_DEPLOYMENTS - JOB_ONLY - WHERE_A_REPLICA_IS, service)
    return names - ALTERNATIVES - UNSET_IN_PRODUCTION


def job_required() -> set[str]:
    names = {"ADMIN_DATABASE_URL", "NATS_URL", "STREAM_NAME", "STREAM_REPLICAS", "DUPLICATE_WINDOW_SECONDS"}
    return names | {u for s in service_ports() for u in _expand({"{SERVICE}_DATABASE_URL", *JOB_ONLY}, s)}


def known() -> set[str]:
    names = {n for found in settings_variables().values() for n in found}
    for service in service_ports():
        names |= _expand(environ_reads(), service)
    return names


def unknown(names: set[str]) -> set[str]:
    return {n for n in names - known() if not HELPER.match(n)}


def test_the_code_reads_what_this_test_expects() -> None:
    """The discovery itself: if this fails, the drift checks below would be looking at nothing."""
    reads = environ_reads()
    assert {"{SERVICE}_DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "PORT", "HOST"} <= reads
    assert reads >= JOB_ONLY and known() >= ALTERNATIVES
    assert known() >= SIGNING_KEY_SOURCES and "AUDIT_ORIGIN" in required("audit")
    assert "AUDIT_ORIGIN" not in required("intake")
    assert {"NATS_URL", "JWT_SECRET", "STREAM_REPLICAS", "INTAKE_DATABASE_URL", "PORT"} <= required("intake")
    assert not {"AUDIT_DATABASE_URL", "INTAKE_MIGRATION_DATABASE_URL", "ADMIN_DATABASE_URL"} & required("intake")


def test_settings_left_unset_are_named_where_operators_look() -> None:
    from deploy_files import DEPLOY, ROOT

    assert known() >= UNSET_IN_PRODUCTION
    for name in UNSET_IN_PRODUCTION:
        for path in (ROOT / ".env.example", DEPLOY / "k8s" / "base" / "config.yaml"):
            assert f"# {name}=" in path.read_text() or f"# {name}:" in path.read_text(), f"{path} does not name {name}"


def _compose_env(model: dict[str, Any], name: str) -> set[str]:
    return set(model["services"][name].get("environment") or {})


def test_compose_runs_every_service_on_its_port_with_every_setting() -> None:
    model = compose()
    for name, port in service_ports().items():
        service = model["services"].get(name)
        assert service, f"docker-compose.yml has no service {name}"
        assert service["command"] == ["povguard-serve", name]
        assert service["environment"]["PORT"] == str(port)
        assert [p["target"] for p in service.get("ports", [])] == [port]
        assert service["read_only"] and service["image"] == model["services"]["migrate"]["image"]
        env = _compose_env(model, name)
        assert required(name) <= env, f"{name} lacks {sorted(required(name) - env)}"
        assert name != "audit" or env & SIGNING_KEY_SOURCES, "audit has no signing key"
        assert not unknown(env), f"{name} sets {sorted(unknown(env))}, which the code does not read"
        assert not env & (_expand(JOB_ONLY, name) | {"ADMIN_DATABASE_URL"}), f"{name} holds an owner's URL"
    job = _compose_env(model, "migrate")
    assert job_required() <= job, f"the migration job lacks {sorted(job_required() - job)}"
    assert model["services"]["migrate"]["command"] == ["povguard-migrate"]
    prometheus = (compose_dir() / "prometheus.yml").read_text()
    for name, port in service_ports().items():
        assert f'"{name}:{port}"' in prometheus, f"prometheus does not scrape {name}:{port}"
    assert sorted(n for n in model["services"] if n.startswith("nats-")) == ["nats-1", "nats-2", "nats-3"]


def compose_dir() -> Any:
    from deploy_files import DEPLOY

    return DEPLOY / "compose"


def _containers(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            for c in doc["spec"]["template"]["spec"]["containers"]:
                if c["image"].split("/")[-1].split(":")[0] == IMAGE:
                    out[doc["metadata"]["name"]] = c
    return out


def _k8s_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> set[str]:
    maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        names |= set(maps[source["configMapRef"]["name"]])
    return names


def test_manifests_run_every_service_on_its_port_with_every_setting() -> None:
    for overlay in OVERLAYS:
        docs = kustomize(overlay)
        containers = _containers(docs)
        services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
        for name, port in service_ports().items():
            c = containers.get(name)
            assert c, f"{overlay}: no Deployment runs {name}"
            assert c["command"] == ["povguard-serve", name]
            assert [p["containerPort"] for p in c["ports"]] == [port]
            assert {"name": "PORT", "value": str(port)} in c["env"]
            assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
            assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert c["securityContext"]["readOnlyRootFilesystem"] and c["resources"]["limits"]
            assert [p["port"] for p in services[name]["spec"]["ports"]] == [port]
            env = _k8s_env(docs, c)
            assert required(name) <= env, f"{overlay} {name} lacks {sorted(required(name) - env)}"
            assert name != "audit" or env & SIGNING_KEY_SOURCES, f"{overlay}: audit has no signing key"
            assert not unknown(env), f"{overlay} {name} sets {sorted(unknown(env))}, which the code does not read"
            assert not env & (_expand(JOB_ONLY, name) | {"ADMIN_DATABASE_URL"}), f"{name} holds an owner's URL"
        assert set(containers) == {*service_ports(), "povguard-migrate"}, "a Deployment of an unknown service"
        job = _k8s_env(docs, containers["povguard-migrate"])
        assert job_required() <= job, f"{overlay}: the migration job lacks {sorted(job_required() - job)}"
        assert {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"} >= set(service_ports())
