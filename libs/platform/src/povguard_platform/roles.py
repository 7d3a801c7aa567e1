"""Database roles. Each service schema has two login roles:

- its owner, `povguard_<svc>_owner`, which owns the schema and everything in it and runs the Alembic migrations;
- its runtime role, `povguard_<svc>`, which the service connects as. It may use its own schema only, as granted by
  the migrations (`runtime_grants_ddl`): read and append its events, never change them.

Neither is a superuser or may create roles, databases or schemas. Roles are cluster-wide and schemas belong to one
database, so `provision` creates the roles once (idempotently, also when two provisioners race) and the schemas in
the database it is given. It needs an admin connection (a superuser): `povguard up` and the test fixtures call it
with the one they have; against an external server the operator runs `povguard db provision <admin-url>`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from povguard_platform.schema import Op, execute_all, ident
from povguard_platform.settings import asyncpg_dsn

# What a service role may do outside its grants: log in, nothing else.
_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"


def owner_role(schema: str) -> str:
    return f"povguard_{ident(schema)}_owner"


def runtime_role(schema: str) -> str:
    return f"povguard_{ident(schema)}"


def role_url(url: str, role: str, password: str | None = None) -> str:
    """`url` (same server, same database) logging in as `role`."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    login = quote(role, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
    return urlunsplit(parts._replace(netloc=f"{login}@{host}"))


def login_urls(url: str, schemas: Iterable[str], passwords: Mapping[str, str] | None = None,
               ) -> tuple[dict[str, str], dict[str, str]]:
    """Each schema's runtime and owner URLs on `url`'s server and database: (database_urls,
    migration_database_urls), as `Settings` takes them."""
    pw = passwords or {}
    schemas = list(schemas)
    return ({s: role_url(url, runtime_role(s), pw.get(runtime_role(s))) for s in schemas},
            {s: role_url(url, owner_role(s), pw.get(owner_role(s))) for s in schemas})


def runtime_grants_ddl(schema: str, append_only: Sequence[str] = ("events",)) -> list[str]:
    """What the runtime role may do, granted by the owner in a migration: use the schema; read and write its tables
    (read models, inbox, relay checkpoint, dead letters) and use its sequences, also those that later migrations
    create (the owner's default privileges); only read and append to the `append_only` tables (a later migration
    that adds one revokes the same on it); read the migration version (readiness), never write it."""
    s, app = ident(schema), runtime_role(schema)
    dml = "SELECT, INSERT, UPDATE, DELETE, TRUNCATE"
    return [
        f"GRANT USAGE ON SCHEMA {s} TO {app}",
        f"GRANT {dml} ON ALL TABLES IN SCHEMA {s} TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {app}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT {dml} ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {app}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {s}.alembic_version FROM {app}",
        *(f"REVOKE UPDATE, DELETE, TRUNCATE ON {s}.{ident(t)} FROM {app}" for t in append_only),
    ]


def grant_runtime(op: Op, schema: str, append_only: Sequence[str] = ("events",)) -> None:
    execute_all(op, runtime_grants_ddl(schema, append_only))


def revoke_runtime(op: Op, schema: str) -> None:
    """Undo `grant_runtime` (for a downgrade)."""
    s, app = ident(schema), runtime_role(schema)
    execute_all(op, [f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} REVOKE ALL ON TABLES FROM {app}",
                     f"ALTER DEFAULT PRIVILEGES IN SCHEMA {s} REVOKE ALL ON SEQUENCES FROM {app}",
                     f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {app}",
                     f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {s} FROM {app}",
                     f"REVOKE ALL ON SCHEMA {s} FROM {app}"])


async def provision(admin_url: str, schemas: Iterable[str], passwords: Mapping[str, str] | None = None) -> None:
    """Create each schema's owner and runtime roles (if missing; `passwords` by role name sets theirs) and the
    schema owned by its owner in `admin_url`'s database. Objects an earlier migration run as another user left in
    the schema are handed to the owner, so migrations run as the owner can change them."""
    schemas = list(schemas)
    roles = [r for s in schemas for r in (owner_role(s), runtime_role(s))]
    conn = await asyncpg.connect(asyncpg_dsn(admin_url))
    try:
        for role in roles:
            await _ensure_role(conn, role, (passwords or {}).get(role))
        for schema in schemas:
            await _ensure_schema(conn, schema)
        if roles:
            database = await conn.fetchval("SELECT current_database()")
            await conn.execute(f"GRANT CONNECT ON DATABASE {_quoted(database)} TO {', '.join(roles)}")
        # Since PostgreSQL 15 only its owner may create in `public`; on older servers everybody may.
        if await conn.fetchval("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = 'public')"):
            await conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        await conn.close()


async def _ensure_role(conn: asyncpg.Connection, role: str, password: str | None) -> None:
    found = await conn.fetchrow(
        "SELECT rolcanlogin AND NOT (rolsuper OR rolcreatedb OR rolcreaterole OR rolreplication OR rolbypassrls) "
        "AS plain FROM pg_roles WHERE rolname = $1", role)
    if found is None:
        # another provisioner (a parallel test session on the same server) may create it first
        with contextlib.suppress(asyncpg.DuplicateObjectError, asyncpg.UniqueViolationError):
            await conn.execute(f"CREATE ROLE {role} {_ATTRIBUTES}")
    elif not found["plain"]:
        await conn.execute(f"ALTER ROLE {role} {_ATTRIBUTES}")
    if password is not None:
        await conn.execute(f"ALTER ROLE {role} PASSWORD {_literal(password)}")


async def _ensure_schema(conn: asyncpg.Connection, schema: str) -> None:
    s, owner = ident(schema), owner_role(schema)
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s} AUTHORIZATION {owner}")
    await conn.execute(f"ALTER SCHEMA {s} OWNER TO {owner}")
    # Tables first: their identity and serial sequences follow them (and cannot be altered on their own).
    for kind, query in (
        ("TABLE", "SELECT c.relname FROM pg_class c WHERE c.relnamespace = $1::regnamespace "
                  "AND c.relkind IN ('r', 'p', 'v', 'm', 'f') AND c.relowner <> $2::regrole"),
        ("SEQUENCE", "SELECT c.relname FROM pg_class c WHERE c.relnamespace = $1::regnamespace "
                     "AND c.relkind = 'S' AND c.relowner <> $2::regrole"),
    ):
        for (name,) in await conn.fetch(query, s, owner):
            await conn.execute(f"ALTER {kind} {s}.{_quoted(name)} OWNER TO {owner}")
    for (function,) in await conn.fetch(
            "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = $1::regnamespace "
            "AND p.proowner <> $2::regrole", s, owner):
        await conn.execute(f"ALTER ROUTINE {function} OWNER TO {owner}")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
