"""Alembic, one migration history per service, each in its own schema (its own version table there).

A service's `migrations/env.py` is two lines: `from povguard_platform.migrations import run_env; run_env("x")`.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import AsyncConnection, async_engine_from_config

from povguard_platform.schema import ident
from povguard_platform.settings import get_settings, sqlalchemy_url


def alembic_config(migrations_dir: Path, schema: str, url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("povguard_schema", ident(schema))
    if url:
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def _configure(connection: Connection, schema: str) -> None:
    connection.execute(text(f"CREATE SCHEMA IF NOT EXISTS {ident(schema)}"))
    context.configure(connection=connection, version_table_schema=schema, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()


def run_env(schema: str) -> None:
    """Body of every service's env.py: reuse a connection handed over by `upgrade`, else connect by URL."""
    cfg = context.config
    shared: Connection | None = cfg.attributes.get("connection")
    if shared is not None:
        _configure(shared, schema)
        return
    if not cfg.get_main_option("sqlalchemy.url"):
        cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(get_settings().database_url_for(schema)))

    async def _run() -> None:
        engine = async_engine_from_config(cfg.get_section(cfg.config_ini_section, {}), prefix="sqlalchemy.",
                                          poolclass=pool.NullPool)
        async with engine.begin() as conn:
            await conn.run_sync(_configure, schema)
        await engine.dispose()

    asyncio.run(_run())


async def upgrade(conn: AsyncConnection, migrations_dir: Path, schema: str) -> None:
    """Bring the schema to head inside `conn`'s transaction; an advisory lock keeps replicas from racing."""
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                       {"k": zlib.crc32(f"povguard.migrate.{schema}".encode())})
    cfg = alembic_config(migrations_dir, schema)

    def _upgrade(sync_conn: Connection) -> None:
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    await conn.run_sync(_upgrade)


async def is_at_head(conn: AsyncConnection, migrations_dir: Path, schema: str) -> bool:
    heads = set(ScriptDirectory.from_config(alembic_config(migrations_dir, schema)).get_heads())

    def _current(sync_conn: Connection) -> set[str]:
        # asked at every readiness probe and scrape: keep alembic's "Context impl ..." lines out of the logs
        quiet = logging.getLogger("alembic.runtime.migration")
        level, quiet.level = quiet.level, logging.WARNING
        try:
            ctx = MigrationContext.configure(sync_conn, opts={"version_table_schema": schema})
            return set(ctx.get_current_heads())
        finally:
            quiet.level = level

    return await conn.run_sync(_current) == heads
