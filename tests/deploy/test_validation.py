"""Every deployment file is read by the tool that will read it in production: Compose, kustomize with the
Kubernetes schemas, promtool; the dashboard and the alerts use only metrics the code exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from deploy_files import DEPLOY, OVERLAYS, ROOT, compose, compose_binary, kustomize, run, tool

CRDS = {("postgresql.cnpg.io/v1", "Cluster"), ("postgresql.cnpg.io/v1", "ScheduledBackup")}


def test_compose_files_are_valid_and_need_their_secrets(tmp_path: Path) -> None:
    assert compose()["services"] and compose("docker-compose.yml", "deploy/compose/host-network.yml")["services"]
    secrets = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert {"JWT_SECRET", "AUDIT_SIGNING_KEYS", "POSTGRES_PASSWORD", "INTAKE_DB_PASSWORD",
            "INTAKE_OWNER_DB_PASSWORD"} <= set(secrets)
    for missing in secrets:  # none has a default in the compose file: each one left out is refused by name
        env = tmp_path / f"without-{missing}.env"
        env.write_text("".join(f"{k}={v}\n" for k, v in secrets.items() if k != missing))
        refused = run(compose_binary(), "--env-file", str(env), "config", "-q")
        assert refused.returncode != 0 and missing in refused.stderr, (missing, refused.stderr)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kustomize_overlay_validates_strictly(overlay: str) -> None:
    docs = kustomize(overlay)
    version = kubernetes_validate.latest_version()
    unknown = set()
    for doc in docs:
        if (doc["apiVersion"], doc["kind"]) in CRDS:
            unknown.add((doc["apiVersion"], doc["kind"]))
            continue
        kubernetes_validate.validate(doc, version, strict=True)  # raises on any schema error or unknown field
    assert unknown <= CRDS
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy", "Job",
            "ConfigMap", "Cluster"} <= kinds


def test_prod_overlay_holds_no_secret_and_dev_makes_every_secret_it_uses() -> None:
    assert not [d for d in kustomize("prod") if d["kind"] == "Secret"]
    dev = kustomize("dev")
    made = {(d["metadata"]["name"], k) for d in dev if d["kind"] == "Secret" for k in d["data"]}
    made |= {("povguard-db-superuser", "username"), ("povguard-db-superuser", "password")}  # CloudNativePG's
    used = {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for doc in dev if doc["kind"] in ("Deployment", "Job")
            for c in doc["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})}
    assert used and used <= made, used - made


def test_postgres_is_a_replicated_cluster_with_backups_and_a_superuser_for_the_job() -> None:
    [cluster] = [d for d in kustomize("prod") if d["kind"] == "Cluster"]
    spec = cluster["spec"]
    assert spec["instances"] == 3 and spec["backup"]["barmanObjectStore"]["destinationPath"]
    assert spec["enableSuperuserAccess"] and spec["bootstrap"]["initdb"]["database"] == "povguard"
    assert any(d["kind"] == "ScheduledBackup" for d in kustomize("prod"))


def test_nats_helm_values_ask_for_three_jetstream_nodes_on_files() -> None:
    values = yaml.safe_load((DEPLOY / "k8s" / "nats" / "values.yaml").read_text())
    assert values["config"]["cluster"] == {"enabled": True, "replicas": 3}
    store = values["config"]["jetstream"]
    assert store["enabled"] and store["fileStore"]["enabled"] and store["fileStore"]["pvc"]["enabled"]
    assert not store["memoryStore"]["enabled"] and values["promExporter"]["enabled"]
    [config] = [d for d in kustomize("prod") if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "povguard-config"]
    assert config["data"]["STREAM_REPLICAS"] == "3"  # R3 on the three nodes


def test_promtool_checks_and_tests_the_alert_rules() -> None:
    promtool = tool("promtool", "Debian's prometheus package (.ci/run installs it)")
    checked = run(promtool, "check", "rules", str(DEPLOY / "prometheus" / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", str(DEPLOY / "prometheus" / "alerts.test.yml"))
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    config = run(promtool, "check", "config", "--syntax-only", str(DEPLOY / "compose" / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    tests = (DEPLOY / "prometheus" / "alerts.test.yml").read_text()
    untested = [r["alert"] for g in rules["groups"] for r in g["rules"] if f"alertname: {r['alert']}\n" not in tests]
    assert not untested, f"alerts without a test: {untested}"


def exported_metrics() -> set[str]:
    """Every series name the services export: the families registered by the platform and the services' metrics
    modules, with the suffixes each type adds."""
    import importlib

    from prometheus_client import REGISTRY

    for module in ("povguard_platform.metrics", "povguard_audit.metrics"):
        importlib.import_module(module)
    names = set()
    for family in REGISTRY.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""]}
        names |= {family.name + s for s in suffixes.get(family.type, [""])}
    return names


def expressions() -> dict[str, list[str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "povguard.json").read_text())
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return {"dashboard": [t["expr"] for p in dashboard["panels"] for t in p["targets"]],
            "alerts": [r["expr"] for g in rules["groups"] for r in g["rules"]]}


def test_dashboard_and_alerts_read_only_metrics_the_code_exports() -> None:
    exported = exported_metrics()
    for where, exprs in expressions().items():
        for expr in exprs:
            used = set(re.findall(r"\b(povguard_[a-z_]+)", expr))
            assert used or expr.startswith('up{job="povguard"}'), f"{where}: {expr} reads no povguard metric"
            assert used <= exported, f"{where}: {sorted(used - exported)} not exported by the code"
    panels = " ".join(expressions()["dashboard"])
    for needed in ("povguard_consumer_lag_messages", "povguard_relay_lag_events", "povguard_dead_letters",
                   "povguard_http_requests_total", "povguard_http_request_seconds_bucket",
                   "povguard_audit_last_checkpoint_timestamp_seconds",
                   "povguard_audit_witness_last_cosignature_timestamp_seconds"):
        assert needed in panels, f"the dashboard has no panel on {needed}"


def test_dockerfile_takes_its_base_as_an_argument_and_runs_unprivileged() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ARG BASE_IMAGE=", text, re.M)
    assert all(line.split()[1] == "${BASE_IMAGE}" for line in text.splitlines() if line.startswith("FROM "))
    assert re.search(r"^USER 10001:10001$", text, re.M) and "HEALTHCHECK" in text
    assert "uv.lock" in text and "tools/src" not in text  # installed from the lock; the tools stay out


def test_services_reach_nats_their_database_dns_and_the_collector_only() -> None:
    docs = kustomize("prod")
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in docs if d["kind"] in ("Deployment", "Job")]
    egress = [p for p in policies.values() if "Egress" in p["policyTypes"] and p["podSelector"].get("matchLabels")
              and all(pod.get(k) == v for pod in pods for k, v in p["podSelector"]["matchLabels"].items())]
    assert len(egress) == 1, "one egress policy covers every povguard pod"
    allowed = {(port["port"], port["protocol"]) for rule in egress[0]["egress"] for port in rule["ports"]}
    assert allowed == {(4222, "TCP"), (5432, "TCP"), (53, "UDP"), (53, "TCP"), (4318, "TCP")}
    assert all(rule.get("to") for rule in egress[0]["egress"]), "every egress rule names its peers"


def test_the_remaining_files_parse_and_no_file_goes_unchecked() -> None:
    for script in ("real-run.sh", "stand-ins/postgres/entrypoint.sh"):
        checked = run("bash", "-n", str(DEPLOY / script))
        assert checked.returncode == 0, checked.stderr
    otel = yaml.safe_load((DEPLOY / "compose" / "otel-collector.yaml").read_text())
    for pipeline in otel["service"]["pipelines"].values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline[kind]) <= set(otel[kind]), f"otel pipeline names an undefined {kind}"
    for dockerfile in (DEPLOY / "stand-ins").glob("*/Dockerfile"):
        lines = dockerfile.read_text().splitlines()
        assert any(line.startswith("FROM ${") for line in lines) and any(line.startswith("USER ") for line in lines)
    # each file of deploy/ is read by one of the tests above (a new kind of file needs its check here first)
    checked_here = {
        "compose/host-network.yml", "compose/otel-collector.yaml",
        "compose/prometheus.yml", "grafana/kustomization.yaml", "grafana/povguard.json", "k8s/nats/values.yaml",
        "prometheus/alerts.test.yml", "prometheus/alerts.yml", "prometheus/kustomization.yaml", "real-run.sh",
        "stand-ins/README.md", "stand-ins/postgres/entrypoint.sh", "wheels/.gitkeep",
    }
    tracked = run("git", "ls-files", "deploy")  # not the wheels a real run downloads (.gitignore)
    assert tracked.returncode == 0, tracked.stderr
    files = {line.removeprefix("deploy/") for line in tracked.stdout.splitlines()}
    kustomized = {f for f in files if f.startswith("k8s/base/") or f.startswith("k8s/overlays/")}
    dockerfiles = {f for f in files if f.startswith("stand-ins/") and f.endswith("/Dockerfile")}
    assert files - kustomized - dockerfiles <= checked_here, sorted(files - kustomized - dockerfiles - checked_here)
