"""Where the other services answer (for the 运行 page: readiness, lags, dead letters). `povguard up` sets these."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceUrls(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    intake_url: str = "http://127.0.0.1:8101"
    assessment_url: str = "http://127.0.0.1:8102"
    review_url: str = "http://127.0.0.1:8103"
    support_url: str = "http://127.0.0.1:8104"
    audit_url: str = "http://127.0.0.1:8105"
    reporting_url: str = "http://127.0.0.1:8106"

    def urls(self) -> dict[str, str]:
        return {name.removesuffix("_url"): url.rstrip("/") for name, url in self.model_dump().items()}


@lru_cache
def service_urls() -> ServiceUrls:
    return ServiceUrls()
