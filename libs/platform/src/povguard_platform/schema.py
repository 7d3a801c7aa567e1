"""DDL of the platform tables every service schema holds: its event store (which is also its outbox), the relay's
checkpoint, and the consumer side (inbox, per-stream versions, failure counts, dead letters).

Each service's first Alembic revision calls `create_platform_tables(op, schema)`, in a schema `roles.provision`
created for the service's owner role.
"""

from __future__ import annotations

import re
import zlib
from typing import Protocol

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def ident(name: str) -> str:
    """A schema or channel name checked to be a plain SQL identifier (they are interpolated into SQL)."""
    if not _IDENT.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def append_lock_key(schema: str) -> int:
    """The advisory lock that serialises one store's appends (a stable 32-bit key per schema)."""
    return zlib.crc32(f"povguard.events.{ident(schema)}".encode())


def platform_ddl(schema: str) -> list[str]:
    s = ident(schema)
    return [
        # The event store. (stream_type, stream_id, version) is the optimistic-concurrency check: a stale append
        # violates it and fails loudly. `position` is assigned under a transaction-scoped advisory lock (taken by
        # the trigger below, so no writer can bypass it), so commits happen in position order and a reader following
        # `position` never skips a late commit.
        f"""CREATE TABLE {s}.events (
            position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            id uuid NOT NULL UNIQUE,
            stream_type text NOT NULL,
            stream_id text NOT NULL,
            version integer NOT NULL CHECK (version > 0),
            type text NOT NULL,
            type_version integer NOT NULL DEFAULT 1,
            township text NOT NULL,
            -- stamped by the database under the append lock, so time never runs backwards along position
            time timestamptz NOT NULL DEFAULT clock_timestamp(),
            actor jsonb NOT NULL,
            correlation_id uuid,
            causation_id uuid,
            traceparent text,
            policy text,
            data jsonb NOT NULL,
            CONSTRAINT events_stream_version_key UNIQUE (stream_type, stream_id, version)
        )""",
        # Statement-level BEFORE INSERT fires before any row's identity value is drawn: the lock covers every
        # position this transaction takes, and is held to its commit. The NOTIFY (delivered at commit) wakes the relay.
        f"""CREATE FUNCTION {s}.events_before_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_advisory_xact_lock({append_lock_key(s)}); RETURN NULL; END $$""",
        f"""CREATE TRIGGER events_serialise BEFORE INSERT ON {s}.events
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.events_before_insert()""",
        f"""CREATE FUNCTION {s}.events_after_insert() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_notify('{s}_events', ''); RETURN NULL; END $$""",
        f"""CREATE TRIGGER events_notify AFTER INSERT ON {s}.events
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.events_after_insert()""",
        # Events never change: refuse UPDATE, DELETE and TRUNCATE at the database, not only in code.
        f"""CREATE FUNCTION {s}.events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN RAISE EXCEPTION 'events are immutable (%)', TG_OP USING ERRCODE = 'restrict_violation'; END $$""",
        *events_triggers_ddl(s),
        f"""CREATE TABLE {s}.relay_checkpoint (
            id boolean PRIMARY KEY DEFAULT true CHECK (id),
            position bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        f"INSERT INTO {s}.relay_checkpoint (position) VALUES (0)",
        # Inbox: an event id applied by a consumer, recorded in the same transaction as its effect.
        f"""CREATE TABLE {s}.inbox (
            consumer text NOT NULL,
            event_id uuid NOT NULL,
            source text NOT NULL,
            source_position bigint NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, event_id)
        )""",
        # The last version applied per source stream: keeps each stream's events in order across replicas.
        f"""CREATE TABLE {s}.consumer_streams (
            consumer text NOT NULL,
            source text NOT NULL,
            stream_type text NOT NULL,
            stream_id text NOT NULL,
            version integer NOT NULL,
            PRIMARY KEY (consumer, source, stream_type, stream_id)
        )""",
        f"""CREATE TABLE {s}.consumer_failures (
            consumer text NOT NULL,
            event_id uuid NOT NULL,
            attempts integer NOT NULL,
            last_error text NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (consumer, event_id)
        )""",
        f"""CREATE TABLE {s}.dead_letters (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            consumer text NOT NULL,
            event_id uuid NOT NULL,
            subject text NOT NULL,
            event jsonb NOT NULL,
            error text NOT NULL,
            attempts integer NOT NULL,
            failed_at timestamptz NOT NULL DEFAULT now(),
            resolved_at timestamptz,
            resolution text,
            UNIQUE (consumer, event_id)
        )""",
    ]


def append_only_ddl(schema: str, table: str, function: str, row_trigger: str) -> list[str]:
    """Triggers on `schema.table` that call `function` (which raises) on UPDATE and DELETE of a row and on TRUNCATE.
    ENABLE ALWAYS: they fire under `session_replication_role = replica` too, so even a superuser gets past them only
    by disabling or dropping one. Idempotent, for the migrations of existing databases."""
    s, t, fn = ident(schema), ident(table), ident(function)
    no_truncate = ident(f"{t}_no_truncate")
    return [
        f"""CREATE OR REPLACE TRIGGER {ident(row_trigger)} BEFORE UPDATE OR DELETE ON {s}.{t}
            FOR EACH ROW EXECUTE FUNCTION {s}.{fn}()""",
        f"""CREATE OR REPLACE TRIGGER {no_truncate} BEFORE TRUNCATE ON {s}.{t}
            FOR EACH STATEMENT EXECUTE FUNCTION {s}.{fn}()""",
        # (CREATE OR REPLACE resets a trigger to ENABLE ORIGIN, so this comes after it)
        f"ALTER TABLE {s}.{t} ENABLE ALWAYS TRIGGER {ident(row_trigger)}",
        f"ALTER TABLE {s}.{t} ENABLE ALWAYS TRIGGER {no_truncate}",
    ]


def events_triggers_ddl(schema: str) -> list[str]:
    """The events table's immutability triggers, and its append lock and NOTIFY firing in replica mode as well (an
    insert that skipped the lock could commit out of position order)."""
    s = ident(schema)
    return [
        *append_only_ddl(s, "events", "events_are_immutable", "events_immutable"),
        f"ALTER TABLE {s}.events ENABLE ALWAYS TRIGGER events_serialise",
        f"ALTER TABLE {s}.events ENABLE ALWAYS TRIGGER events_notify",
    ]


def events_triggers_undo_ddl(schema: str) -> list[str]:
    """Back to the events triggers of before `events_triggers_ddl` (for a downgrade)."""
    s = ident(schema)
    return [f"DROP TRIGGER IF EXISTS events_no_truncate ON {s}.events",
            *(f"ALTER TABLE {s}.events ENABLE TRIGGER {t}" for t in ("events_immutable", "events_serialise",
                                                                     "events_notify"))]


class Op(Protocol):
    """Alembic's `op`, as far as the DDL helpers use it."""

    def execute(self, sqltext: str) -> object: ...


def create_platform_tables(op: Op, schema: str) -> None:
    execute_all(op, platform_ddl(schema))


def execute_all(op: Op, statements: list[str]) -> None:
    for statement in statements:
        op.execute(statement)
