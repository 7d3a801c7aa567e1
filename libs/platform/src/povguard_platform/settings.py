"""Settings of a service, from the environment (NATS_URL, DATABASE_URL, ...); validated once, read through a
cached function."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "povguard-development-secret-not-for-production"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    nats_url: str = "nats://127.0.0.1:4222"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/povguard"
    stream_name: str = "POVGUARD_EVENTS"
    # JetStream drops a republished Nats-Msg-Id within this window; it must outlast the relay's worst retry horizon
    # (an outage of NATS or a stopped relay). Inboxes catch anything later.
    duplicate_window_seconds: float = 24 * 3600
    # Copies of the events stream on a JetStream cluster (3 on a 3-node cluster: a node may die without loss).
    stream_replicas: int = Field(default=1, ge=1, le=5)
    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "povguard"
    jwt_audience: str = "povguard"
    log_level: str = "INFO"
    campaign: str = "533123-2022"  # the policy file in force: policies/<campaign>.toml
    run_background: bool = True  # relay and consumers inside the API process

    @model_validator(mode="after")
    def _refuse_dev_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.jwt_secret.get_secret_value() == DEV_JWT_SECRET:
            raise ValueError("JWT_SECRET must be set in production")
        return self

    def database_url_for(self, service: str) -> str:
        """A per-service URL (e.g. INTAKE_DATABASE_URL) wins over DATABASE_URL."""
        return os.environ.get(f"{service.upper()}_DATABASE_URL", self.database_url)

    def migration_database_url_for(self, service: str) -> str:
        """The schema owner's URL for migrations (INTAKE_MIGRATION_DATABASE_URL, else MIGRATION_DATABASE_URL), else
        the service's own URL."""
        return (os.environ.get(f"{service.upper()}_MIGRATION_DATABASE_URL") or os.environ.get("MIGRATION_DATABASE_URL")
                or self.database_url_for(service))


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
