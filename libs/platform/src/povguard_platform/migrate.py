"""Migrate every installed service's schema (or those named) and declare the events stream, then exit:
`povguard-migrate [service ...]`, the one-shot job a deployment runs before the services start. It connects as the
schema owner (`<SERVICE>_MIGRATION_DATABASE_URL` or `MIGRATION_DATABASE_URL`, else the service's own URL)."""

from __future__ import annotations

import argparse
import asyncio
import logging

from sqlalchemy.ext.asyncio import create_async_engine

from povguard_platform.bus import connect, ensure_stream
from povguard_platform.migrations import upgrade
from povguard_platform.serve import service_definitions
from povguard_platform.settings import Settings, get_settings, sqlalchemy_url
from povguard_platform.telemetry import setup_logging

log = logging.getLogger(__name__)


async def migrate(settings: Settings, names: list[str]) -> None:
    definitions = service_definitions()
    unknown = sorted(set(names) - set(definitions))
    if unknown:
        raise SystemExit(f"unknown service(s): {', '.join(unknown)} (installed: {', '.join(definitions)})")
    for name in names or list(definitions):
        engine = create_async_engine(sqlalchemy_url(settings.migration_database_url_for(name)))
        try:
            async with engine.begin() as conn:  # the advisory lock in upgrade() lets replicas of the job race safely
                await upgrade(conn, definitions[name].migrations_dir, name)
        finally:
            await engine.dispose()
        log.info("schema %s at head", name)
    nc = await connect(settings.nats_url, "povguard-migrate")
    try:
        await ensure_stream(nc.jetstream(), settings.stream_name, settings.duplicate_window_seconds,
                            settings.stream_replicas)
    finally:
        await nc.drain()
    log.info("stream %s ready (replicas %d)", settings.stream_name, settings.stream_replicas)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("services", nargs="*", help="services to migrate (default: every installed one)")
    args = parser.parse_args()
    settings = get_settings()
    setup_logging(settings.log_level)
    asyncio.run(migrate(settings, args.services))


if __name__ == "__main__":
    main()
