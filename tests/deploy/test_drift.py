"""docker-compose.yml and the Kubernetes manifests name every service, port and environment variable the code
reads, and nothing the code no longer reads: a new setting or service fails here until the deployment has it."""

from __future__ import annotations

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

# Variables the deployment sets for itself, not read by the code: the pieces a Kubernetes env value is built from.
HELPERS = {"DB_USER", "DB_PASSWORD"}


def required(service: str) -> set[str]:
    """What a deployment of `service` must set: the platform's settings, the service's own settings class if it
    has one, its database URL, and HOST/PORT of `povguard-serve`."""
    every = settings_variables()
    names = set(every["povguard_platform.settings:Settings"])
    names |= {n for cls, found in every.items() if cls.startswith(f"povguard_{service}.") for n in found}
    names |= {n.replace("{SERVICE}", service.upper()) for n in environ_reads() - NOT_FOR_DEPLOYMENTS
              if "MIGRATION" not in n}
    # DATABASE_URL is the fallback of <SERVICE>_DATABASE_URL: each service gets its own URL instead
    return names - {"DATABASE_URL"} - {n for n in names if n.endswith("_DATABASE_URL")
                                       and n != f"{service.upper()}_DATABASE_URL"}


def known() -> set[str]:
    names = {n for found in settings_variables().values() for n in found}
    for n in environ_reads():
        names |= {n.replace("{SERVICE}", s.upper()) for s in service_ports()}
    return names | HELPERS


def test_the_code_reads_what_this_test_expects() -> None:
    """The discovery itself: if this fails, the drift checks below would be looking at nothing."""
    reads = environ_reads()
    assert {"{SERVICE}_DATABASE_URL", "MIGRATION_DATABASE_URL", "OTEL_EXPORTER_OTLP_ENDPOINT", "PORT", "HOST"} <= reads
    assert "AUDIT_SIGNING_KEYS" in required("audit") and "AUDIT_SIGNING_KEYS" not in required("intake")
    assert {"NATS_URL", "JWT_SECRET", "STREAM_REPLICAS", "INTAKE_DATABASE_URL", "PORT"} <= required("intake")


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
        assert env <= known(), f"{name} sets {sorted(env - known())}, which the code does not read"
    assert "MIGRATION_DATABASE_URL" in _compose_env(model, "migrate")
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
            assert env <= known(), f"{overlay} {name} sets {sorted(env - known())}, which the code does not read"
        assert set(containers) == {*service_ports(), "povguard-migrate"}, "a Deployment of an unknown service"
        assert "MIGRATION_DATABASE_URL" in _k8s_env(docs, containers["povguard-migrate"])
        assert {d["metadata"]["name"] for d in docs if d["kind"] == "PodDisruptionBudget"} >= set(service_ports())
