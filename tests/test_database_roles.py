"""Least privilege in PostgreSQL, with all five services running as apps on one database: each connects as its own
runtime role, which reads and appends its events but cannot change them or touch another service's schema; its
owner and a superuser in replica mode cannot change events either. A database migrated before the roles existed
is handed over to them by provisioning, and `povguard db provision` prints the URLs with which `povguard up` runs
the services against that server."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import pool, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from typer.testing import CliRunner

from povguard_platform.migrations import alembic_config, migrate
from povguard_platform.roles import owner_role, provision, runtime_role
from povguard_platform.schema import events_triggers_undo_ddl
from povguard_platform.serve import service_definitions
from povguard_platform.service import ServiceRuntime
from povguard_platform.settings import Settings, sqlalchemy_url
from povguard_platform.web import create_app
from povguard_tools.cli import app as cli
from povguard_tools.runtime.servers import free_port
from povguard_tools.runtime.supervisor import up

SERVICES = ["intake", "assessment", "review", "support", "audit"]
CHANGES = ("UPDATE {s}.events SET data = '{{}}'", "DELETE FROM {s}.events", "TRUNCATE {s}.events")
PROBE = ("INSERT INTO {s}.events (id, stream_type, stream_id, version, type, township, actor, data) VALUES "
         "(gen_random_uuid(), 'probe', gen_random_uuid()::text, 1, 'Probe', '533123101', "
         "'{{\"user\": \"t\", \"role\": \"admin\", \"org\": \"533123\"}}', '{{}}') RETURNING id")


@asynccontextmanager
async def services_running(settings: Settings) -> AsyncIterator[dict[str, ServiceRuntime]]:
    """Every service's HTTP app with its lifespan (migrations, relay, consumers); ready by its own /readyz."""
    definitions = service_definitions()
    async with AsyncExitStack() as stack:
        runtimes: dict[str, ServiceRuntime] = {}
        for name in SERVICES:
            app = create_app(definitions[name], settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            client = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{name}"))
            ready = await client.get("/readyz")  # reads the migration version as the runtime role
            assert ready.status_code == 200, ready.text
            runtimes[name] = app.state.runtime
        yield runtimes


async def refused(engine: AsyncEngine, sql: str, pattern: str, *, replica: bool = False) -> None:
    with pytest.raises(DBAPIError, match=pattern):
        async with engine.begin() as conn:
            if replica:
                await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(text(sql))


async def assert_events_immutable(name: str, runtime: ServiceRuntime, settings: Settings,
                                  admin: AsyncEngine) -> None:
    """As the runtime role: appending works, changing is not permitted; as the owner, and as a superuser in replica
    mode (which skips ordinary triggers), the ENABLE ALWAYS triggers refuse every change."""
    async with runtime.engine.begin() as conn:
        probe = (await conn.execute(text(PROBE.format(s=name)))).scalar_one()
    owner = create_async_engine(sqlalchemy_url(settings.migration_url_for(name)), poolclass=pool.NullPool)
    try:
        for change in CHANGES:
            sql = change.format(s=name)
            await refused(runtime.engine, sql, "permission denied for table events")
            await refused(owner, sql, r"events are immutable \((UPDATE|DELETE|TRUNCATE)\)")
            await refused(admin, sql, r"events are immutable \((UPDATE|DELETE|TRUNCATE)\)", replica=True)
    finally:
        await owner.dispose()
    async with admin.connect() as conn:
        kept = await conn.execute(text(f"SELECT data, township FROM {name}.events WHERE id = :i"), {"i": probe})
        assert kept.one() == ({}, "533123101")
        triggers = dict((await conn.execute(text(
            "SELECT tgname, CAST(tgenabled AS text) FROM pg_trigger "
            "WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal"),
            {"t": f"{name}.events"})).all())
    assert triggers == {t: "A" for t in ("events_serialise", "events_notify", "events_immutable",
                                         "events_no_truncate")}


async def test_each_service_runs_as_its_own_role_confined_to_its_schema_and_its_events_never_change(
        settings: Settings, admin_engine: AsyncEngine) -> None:
    async with services_running(settings) as runtimes:
        for name, runtime in runtimes.items():
            async with runtime.engine.connect() as conn:
                who = (await conn.execute(text(
                    "SELECT current_user, session_user, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles "
                    "WHERE rolname = current_user"))).one()
            assert tuple(who) == (runtime_role(name), runtime_role(name), False, False, False)
            for other in SERVICES:
                if other != name:
                    await refused(runtime.engine, f"SELECT count(*) FROM {other}.events",
                                  f"permission denied for schema {other}")
                    await refused(runtime.engine, f"INSERT INTO {other}.inbox (consumer, event_id, source, "
                                  "source_position) VALUES ('x', gen_random_uuid(), 'x', 1)",
                                  f"permission denied for schema {other}")
            await refused(runtime.engine, "CREATE TABLE public.leak (a int)", "permission denied for schema public")
            await refused(runtime.engine, "CREATE SCHEMA leak", "permission denied for database")
            await refused(runtime.engine, f"INSERT INTO {name}.alembic_version VALUES ('x')",
                          "permission denied for table alembic_version")
            await assert_events_immutable(name, runtime, settings, admin_engine)


async def test_a_database_migrated_before_the_roles_is_handed_to_them(
        settings: Settings, database_url: str, admin_engine: AsyncEngine) -> None:
    """As `povguard up` left a database before the roles: schemas and objects owned by the superuser, the revisions
    before the roles' ones applied, events triggers that replica mode skips and no TRUNCATE trigger."""
    definitions = service_definitions()
    for name in SERVICES:
        async with admin_engine.begin() as conn:
            await conn.execute(text(f"ALTER SCHEMA {name} OWNER TO CURRENT_USER"))
        directory = definitions[name].migrations_dir
        script = ScriptDirectory.from_config(alembic_config(directory, name))
        before = next(r for r in script.walk_revisions() if r.path.endswith("_roles.py")).down_revision
        await migrate(database_url, directory, name, revision=str(before))
        async with admin_engine.begin() as conn:
            for sql in events_triggers_undo_ddl(name):
                await conn.execute(text(sql))
            await conn.execute(text(PROBE.format(s=name)))
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            changed = await conn.execute(text(f"UPDATE {name}.events SET township = '533123102'"))
            assert changed.rowcount == 1  # the hole the roles' revision closes

    await provision(database_url, SERVICES)  # what the operator runs again before starting the new version
    async with admin_engine.connect() as conn:
        for name in SERVICES:
            foreign = (await conn.execute(text(
                "SELECT count(*) FROM pg_class WHERE relnamespace = CAST(:s AS regnamespace) "
                "AND relowner <> CAST(:o AS regrole)"), {"s": name, "o": owner_role(name)})).scalar()
            assert foreign == 0, name
    async with services_running(settings) as runtimes:  # each migrates to head as its owner
        for name, runtime in runtimes.items():
            await assert_events_immutable(name, runtime, settings, admin_engine)


def test_povguard_db_provision_then_up_against_that_server_runs_each_service_as_its_role(
        database_url: str, nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's way to an external server: provision with an admin URL, export the printed URLs, `up`."""
    args = ["db", "provision", database_url, "--service", "intake", "--service", "audit", "--passwords"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, args)  # harmless a second time (new passwords)
    assert again.exit_code == 0, again.output
    urls = dict(line.split("=", 1) for line in again.stdout.splitlines() if "_DATABASE_URL=" in line)
    assert set(urls) == {"INTAKE_DATABASE_URL", "INTAKE_MIGRATION_DATABASE_URL", "AUDIT_DATABASE_URL",
                         "AUDIT_MIGRATION_DATABASE_URL"}
    database = database_url.rsplit("/", 1)[1]
    assert re.fullmatch(rf"postgresql://povguard_intake:[\w-]{{32}}@127\.0\.0\.1:\d+/{database}",
                        urls["INTAKE_DATABASE_URL"])
    assert urls["AUDIT_MIGRATION_DATABASE_URL"].startswith("postgresql://povguard_audit_owner:")
    unknown = CliRunner().invoke(cli, ["db", "provision", database_url, "--service", "nosuch"])
    assert unknown.exit_code == 2 and "no such service: nosuch" in unknown.output

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("NATS_URL", nats_url)
    for name, url in urls.items():
        monkeypatch.setenv(name, url)
    stack = up(tmp_path, {"intake": free_port(), "audit": free_port()})  # starts no PostgreSQL of its own
    try:
        assert stack.postgres is None

        async def logins() -> list[tuple[str, bool]]:
            admin = create_async_engine(sqlalchemy_url(database_url), poolclass=pool.NullPool)
            async with admin.connect() as conn:
                rows = await conn.execute(text(
                    "SELECT DISTINCT a.usename, r.rolpassword IS NOT NULL FROM pg_stat_activity a JOIN pg_authid r "
                    "ON r.rolname = a.usename WHERE a.datname = current_database() AND a.pid <> pg_backend_pid() "
                    "ORDER BY 1"))
                found = [(r[0], r[1]) for r in rows]
            await admin.dispose()
            return found

        assert asyncio.run(logins()) == [("povguard_audit", True), ("povguard_intake", True)]
    finally:
        stack.stop()
