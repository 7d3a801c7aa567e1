"""What the image runs, as processes against real PostgreSQL and NATS: the one-shot `povguard-migrate` (provisions
the roles as the superuser, migrates as each owner, declares the stream), then `povguard-serve` configured by
environment only and running as its runtime role, and `povguard-healthcheck`."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import nats

from povguard_platform.roles import login_urls, owner_role
from povguard_platform.serve import service_definitions
from povguard_tools.runtime.servers import free_port

BIN = Path(sys.executable).parent


def env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.endswith("DATABASE_URL") and k not in ("NATS_URL", "PORT")}
    return {**keep, "ENVIRONMENT": "test", **extra}


async def schemas_and_stream(database_url: str, nats_url: str) -> tuple[dict[str, int], list[str] | None, int]:
    conn = await asyncpg.connect(database_url)
    try:
        versions = {}
        for name in service_definitions():
            owner = await conn.fetchval("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1", name)
            assert owner == owner_role(name)  # provisioned: the schema belongs to its owner role
            versions[name] = int(await conn.fetchval(f"SELECT count(*) FROM {name}.alembic_version"))
    finally:
        await conn.close()
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info("POVGUARD_EVENTS")
        return versions, info.config.subjects, info.config.num_replicas or 1
    finally:
        await nc.close()


def test_the_migration_job_then_every_service_as_its_own_role(database_url: str, nats_url: str, tmp_path: Path) -> None:
    names = list(service_definitions())
    runtime, owners = login_urls(database_url, names)
    urls = {**{f"{n.upper()}_DATABASE_URL": u for n, u in runtime.items()},
            **{f"{n.upper()}_MIGRATION_DATABASE_URL": u for n, u in owners.items()}}
    wrong = subprocess.run([BIN / "povguard-migrate"], env=env(
        ADMIN_DATABASE_URL=database_url, NATS_URL=nats_url, **{**urls, "INTAKE_DATABASE_URL": database_url}),
        capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0 and "povguard_intake" in wrong.stderr  # a URL must log in as its role
    job = subprocess.run([BIN / "povguard-migrate"], env=env(
        ADMIN_DATABASE_URL=database_url, NATS_URL=nats_url, STREAM_NAME="POVGUARD_EVENTS", **urls),
        capture_output=True, text=True, timeout=120)
    assert job.returncode == 0, job.stderr
    versions, subjects, replicas = asyncio.run(schemas_and_stream(database_url, nats_url))
    assert versions == dict.fromkeys(names, 1)
    assert subjects == ["ev.>"] and replicas == 1

    # every service, each with its runtime role's URL only, gets ready on what the job prepared
    ports = {name: free_port() for name in names}
    services = {name: subprocess.Popen([BIN / "povguard-serve", name], env=env(
        PORT=str(ports[name]), HOST="127.0.0.1", NATS_URL=nats_url, **{f"{name.upper()}_DATABASE_URL": runtime[name]}),
        stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{name}.log").open("w")) for name in names}
    try:
        deadline = time.monotonic() + 90
        waiting = set(names)
        with httpx.Client(timeout=2) as client:
            while waiting:
                for name in sorted(waiting):
                    log = tmp_path / f"{name}.log"
                    assert services[name].poll() is None, f"{name} exited: {log.read_text()[-2000:]}"
                    try:
                        ready = client.get(f"http://127.0.0.1:{ports[name]}/readyz")
                        if ready.status_code == 200:
                            waiting.discard(name)
                    except httpx.HTTPError:
                        pass
                assert time.monotonic() < deadline, f"not ready: {sorted(waiting)}"
                time.sleep(0.3)
            # only its own metrics: another service's gauges (0 here) would blur the alerts' max() and sum()
            scraped = client.get(f"http://127.0.0.1:{ports['review']}/metrics").text
            assert 'povguard_ready{service="review"} 1.0' in scraped and "povguard_audit_" not in scraped
        port = ports["review"]
        check = subprocess.run([BIN / "povguard-healthcheck"], env=env(PORT=str(port)), capture_output=True, timeout=30)
        assert check.returncode == 0, check.stderr
    finally:
        for process in services.values():
            process.terminate()
        for process in services.values():
            process.wait(30)
    check = subprocess.run([BIN / "povguard-healthcheck"], env=env(PORT=str(port)), capture_output=True, text=True,
                           timeout=30)
    assert check.returncode == 1 and str(port) in check.stderr
