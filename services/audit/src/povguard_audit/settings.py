"""The audit service's settings (environment variables AUDIT_*), validated once, read through a cached function."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class AuditSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore")

    # ENVIRONMENT (no prefix): production never generates a signing key and refuses one stored in the database.
    environment: Literal["development", "test", "production"] = Field(
        default="development", validation_alias="ENVIRONMENT")
    # Log signing keys (keys.py), never in the audit database: AUDIT_SIGNING_KEY_FILE, a file of base64 Ed25519
    # seeds (32 bytes), one a line (a mounted secret; in deployment synced from the KMS), and/or AUDIT_SIGNING_KEYS,
    # the same comma-separated in an environment secret. All of them sign. Rotation: put the new seed in, take the
    # old one out; the old key stays published as a previous key, so the checkpoints it signed still verify.
    # Without either, development and test generate one key into `data_dir`/signing-key; production refuses.
    signing_key_file: Path | None = None
    signing_keys: SecretStr = SecretStr("")
    data_dir: Path = Path("var/audit")  # `povguard up` sets it under its own data dir
    origin: str = "povguard.cn/audit/533123"
    county: str = "533123"  # subject token for the audit service's own events
    checkpoint_every: int = Field(default=1000, ge=1)  # sign after this many new entries ...
    checkpoint_seconds: float = Field(default=300.0, gt=0)  # ... or when the last checkpoint is this old
    recheck_seconds: float = Field(default=24 * 3600.0, gt=0)  # scheduled full re-check
    # Anomaly thresholds (configuration, not code).
    backdating_hours: float = 72.0
    burst_edits: int = 200
    burst_minutes: float = 10.0
    # Changes after the campaign's data lock (calendar.data_lock, the end of that day in this time zone).
    timezone: str = "Asia/Shanghai"
    # 数字式增收: the latest 人均纯收入 at most line x (1 + margin) before a risk elimination, raised from below the
    # line at most this many days before the decision.
    paper_income_margin: float = Field(default=0.05, ge=0)
    paper_income_window_days: int = Field(default=60, ge=0)
    # 风险消除 less than this many days after the county identified the household (新识别监测对象).
    quick_elimination_days: int = Field(default=61, ge=0)  # two months


@lru_cache
def audit_settings() -> AuditSettings:
    return AuditSettings()
