"""Alembic, one migration history per service, each in its own schema (its own version table there), run by the
schema's owner role (MIGRATION_DATABASE_URL) in a database `roles.provision` prepared.

A service's `migrations/env.py` is two lines: `from povguard_platform.migrations import run_env; run_env("x")`.
"""

from __future__ import annotations

import asyncio
import zlib
from functools import lru_cache
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncConnection, async_engine_from_config, create_async_engine

from povguard_platform.roles import runtime_role
from povguard_platform.schema import ident
from povguard_platform.settings import get_settings, sqlalchemy_url


class NotProvisioned(RuntimeError):
    """The database lacks a service's schema or roles: an admin must run `povguard db provision` first."""


def alembic_config(migrations_dir: Path, schema: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("povguard_schema", ident(schema))
    if url:
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def _configure(connection: Connection, schema: str) -> None:
    _require_provisioned(connection, schema)
    context.configure(connection=connection, version_table_schema=schema, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def _require_provisioned(connection: Connection, schema: str) -> None:
    """The owner may not create schemas or roles (and the migrations grant to the runtime role): say what is missing
    rather than fail on a permission."""
    found = connection.execute(text("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = :s), "
                                    "EXISTS (SELECT FROM pg_roles WHERE rolname = :r)"),
                               {"s": schema, "r": runtime_role(schema)}).one()
    if not all(found):
        raise NotProvisioned(f"database not provisioned for {schema} (schema {schema}, role {runtime_role(schema)}): "
                             "run `povguard db provision <admin-url>` (README, Database roles)")


def run_env(schema: str) -> None:
    """Body of every service's env.py: reuse a connection handed over by `upgrade`, else connect by URL."""
    cfg = context.config
    shared: Connection | None = cfg.attributes.get("connection")
    if shared is not None:
        _configure(shared, schema)
        return
    if not cfg.get_main_option("sqlalchemy.url"):
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(get_settings().migration_url_for(schema)))

    async def _run() -> None:
        engine = async_engine_from_config(cfg.get_section(cfg.config_ini_section, {}), prefix="sqlalchemy.",
                                          poolclass=pool.NullPool)
        async with engine.begin() as conn:
            await conn.run_sync(_configure, schema)
        await engine.dispose()

    asyncio.run(_run())


async def upgrade(conn: AsyncConnection, migrations_dir: Path, schema: str, revision: str = "head") -> None:
    """Bring the schema to head (or `revision`) inside `conn`'s transaction; an advisory lock keeps replicas from
    racing."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                       {"k": zlib.crc32(f"povguard.migrate.{schema}".encode())})
    cfg = alembic_config(migrations_dir, schema)

    def _upgrade(sync_conn: Connection) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, revision)

    await conn.run_sync(_upgrade)


async def migrate(url: str, migrations_dir: Path, schema: str, revision: str = "head") -> None:
    """Bring `schema` to head (or `revision`) over a connection of its own to `url` (the owner's)."""
    engine = create_async_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await upgrade(conn, migrations_dir, schema, revision)
    finally:
        await engine.dispose()


@lru_cache
def head_revisions(migrations_dir: Path, schema: str) -> frozenset[str]:
    """The migration heads this code knows (parsing the scripts costs about a second: do it once)."""
    return frozenset(ScriptDirectory.from_config(alembic_config(migrations_dir, schema)).get_heads())


async def is_at_head(conn: AsyncConnection, migrations_dir: Path, schema: str) -> bool:
    """The schema is at this code's heads: one small query (`/readyz` asks it on every probe)."""
    try:
        rows = await conn.execute(text(f"SELECT version_num FROM {ident(schema)}.alembic_version"))
    except ProgrammingError:  # no version table yet: nothing applied
        return False
    return {r[0] for r in rows} == head_revisions(migrations_dir, schema)
