"""The one-shot job a deployment runs before the services start: `povguard-migrate [service ...]` (default: every
installed service). With ADMIN_DATABASE_URL (a superuser's URL of the database) it first provisions each service's
owner and runtime roles and its schema (`roles.provision`), giving each role the password of the URL the deployment
hands out for it (<SVC>_MIGRATION_DATABASE_URL, <SVC>_DATABASE_URL), so the database follows the deployment's
secrets. Then each schema to head as its owner, then the events stream with STREAM_REPLICAS copies. The services
themselves then run with their runtime role only."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from urllib.parse import unquote, urlsplit

from povguard_platform.bus import connect, ensure_stream
from povguard_platform.migrations import migrate
from povguard_platform.roles import owner_role, provision, runtime_role
from povguard_platform.serve import service_definitions
from povguard_platform.settings import Settings, get_settings
from povguard_platform.telemetry import setup_logging

log = logging.getLogger(__name__)


def role_passwords(settings: Settings, names: list[str]) -> dict[str, str]:
    """Each role's password, from the URLs the services run and migrate with; a URL must log in as its role."""
    found: dict[str, str] = {}
    for name in names:
        for url, role in ((settings.database_url_for(name), runtime_role(name)),
                          (settings.migration_url_for(name), owner_role(name))):
            login = urlsplit(url)
            if login.username != role:
                raise SystemExit(f"{name}: the URL for role {role} logs in as {login.username!r} (set "
                                 f"{name.upper()}_DATABASE_URL and {name.upper()}_MIGRATION_DATABASE_URL)")
            if login.password:
                found[role] = unquote(login.password)
    return found


async def run(settings: Settings, names: list[str], admin_url: str | None) -> None:
    definitions = service_definitions()
    unknown = sorted(set(names) - set(definitions))
    if unknown:
        raise SystemExit(f"unknown service(s): {', '.join(unknown)} (installed: {', '.join(definitions)})")
    names = names or list(definitions)
    if admin_url:
        await provision(admin_url, names, role_passwords(settings, names))
        log.info("provisioned the roles and schemas of %s", ", ".join(names))
    for name in names:
        await migrate(settings.migration_url_for(name), definitions[name].migrations_dir, name)
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
    asyncio.run(run(settings, args.services, os.environ.get("ADMIN_DATABASE_URL")))


if __name__ == "__main__":
    main()
