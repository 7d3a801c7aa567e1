"""Settings of a service, from the environment (NATS_URL, DATABASE_URL, ...); validated once, read through a
cached function."""

from __future__ import annotations

import os
from datetime import date
from functools import lru_cache
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from povguard_platform.partitions import DEFAULT_PARTITIONS

DEV_JWT_SECRET = "povguard-development-secret-not-for-production"
MIN_JWT_SECRET_BYTES = 32  # an HS256 key at least as long as the hash output (RFC 7518 §3.2)
MiB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", hide_input_in_errors=True)  # no secrets in logs

    environment: Literal["development", "test", "production"] = "development"
    nats_url: str = "nats://127.0.0.1:4222"
    # What the service runs with: its runtime role (roles.py). MIGRATION_DATABASE_URL: its owner, which runs the
    # migrations; unset, the migrations run with DATABASE_URL. <SVC>_DATABASE_URL / <SVC>_MIGRATION_DATABASE_URL in
    # the environment, and the two maps here (for a process that runs several services, as the tests do), win.
    database_url: str = "postgresql://postgres@127.0.0.1:5432/povguard"
    migration_database_url: str | None = None
    database_urls: dict[str, str] = Field(default_factory=dict)
    migration_database_urls: dict[str, str] = Field(default_factory=dict)
    # A streaming replica for list, report and export queries (DATABASE_READ_URL, <SVC>_DATABASE_READ_URL, or the
    # map); unset, they read the primary. Reads that follow a client's own write stay on the primary.
    database_read_url: str | None = None
    database_read_urls: dict[str, str] = Field(default_factory=dict)
    stream_name: str = "POVGUARD_EVENTS"
    # JetStream drops a republished Nats-Msg-Id within this window; it must outlast the relay's worst retry horizon
    # (an outage of NATS or a stopped relay). Inboxes catch anything later.
    duplicate_window_seconds: float = 24 * 3600
    # Copies of the events stream on a JetStream cluster (3 on a 3-node cluster: a node may die without loss).
    stream_replicas: int = Field(default=1, ge=1, le=5)
    # Partitions of every consumer (partitions.py): the same for every service and replica; drain before changing.
    partitions: int = Field(default=DEFAULT_PARTITIONS, ge=1, le=256,
                            validation_alias=AliasChoices("povguard_partitions", "partitions"))
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "povguard"
    jwt_audience: str = "povguard"
    log_level: str = "INFO"
    campaign: str = "533123-2022"  # the policy file in force: policies/<campaign>.toml
    # the campaign's "today" for a replayed or past campaign (inside its window); unset: the real date (clock.py)
    campaign_today: date | None = None
    run_background: bool = True  # relay and consumers inside the API process
    # Processes serving the service's port (`povguard-serve`): the first runs the relay, consumers and background
    # work as before; the others serve HTTP only, from the same listening socket. Each process exports its own
    # Prometheus counters, so where pods are scraped one by one, scale with replicas and keep this at 1.
    http_workers: int = Field(default=1, ge=1, le=32)
    # Request bodies beyond these get 413 before anything is parsed. JSON: a batch of 500 visit forms (the largest
    # real command) is about 0.5 MB. Uploads (multipart): Yingjiang's registry of 70,000 households is a 41 MB XLSX
    # (`povguard generate --households 70000`), and about 97 MB as CSV.
    max_body_bytes: int = Field(default=8 * MiB, ge=1)
    max_upload_bytes: int = Field(default=128 * MiB, ge=1)

    @model_validator(mode="after")
    def _refuse_weak_secret_in_production(self) -> Settings:
        if self.environment != "production":
            return self
        secret = self.jwt_secret.get_secret_value()
        if secret == DEV_JWT_SECRET:
            raise ValueError("JWT_SECRET must be set in production (the development default is public)")
        if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ValueError(f"JWT_SECRET is {len(secret.encode())} bytes; production needs at least "
                             f"{MIN_JWT_SECRET_BYTES} random bytes for HS256 (RFC 7518 §3.2), "
                             "e.g. `python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        return self

    def database_url_for(self, service: str) -> str:
        """The URL `service` runs with: its entry in `database_urls`, else INTAKE_DATABASE_URL etc., else
        DATABASE_URL."""
        return (self.database_urls.get(service) or os.environ.get(f"{service.upper()}_DATABASE_URL")
                or self.database_url)

    def read_url_for(self, service: str) -> str:
        """The URL `service`'s list, report and export queries use: its replica's, else the primary's."""
        return (self.database_read_urls.get(service) or os.environ.get(f"{service.upper()}_DATABASE_READ_URL")
                or self.database_read_url or self.database_url_for(service))

    def migration_url_for(self, service: str) -> str:
        """The URL `service`'s migrations run with (its owner): its entry in `migration_database_urls`, else
        INTAKE_MIGRATION_DATABASE_URL etc., else MIGRATION_DATABASE_URL, else the URL it runs with."""
        return (self.migration_database_urls.get(service)
                or os.environ.get(f"{service.upper()}_MIGRATION_DATABASE_URL")
                or self.migration_database_url or self.database_url_for(service))


@lru_cache
def get_settings() -> Settings:
    return Settings()


def sqlalchemy_url(url: str) -> str:
    """postgresql://... as SQLAlchemy's asyncpg URL."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ValueError(f"not a PostgreSQL URL: {url}")


def asyncpg_dsn(url: str) -> str:
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+asyncpg://"):]
