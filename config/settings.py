"""The one settings object. Names are the public interface in DESIGN.md: keep them stable."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigError(RuntimeError):
    """A setting is missing or invalid; the message names the variable and the fix."""


class Settings(BaseSettings):
    """Every setting letzflow reads, from the environment or ``.env`` (environment wins).

    ``LETZAI_SIMULATOR=1`` marks simulator mode (the demo and tests set it), where the API key may be absent.
    """

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    letzai_api_key: str | None = Field(default=None, repr=False)
    letzai_base_url: str = "https://api.letz.ai"
    letzai_organization_id: str | None = None
    letzai_simulator: bool = False
    letzai_max_inflight: int = Field(default=20, ge=1, le=10_000)
    #: LetzAI API requests per second, all workers together.
    letzai_max_rps: float = Field(default=20.0, gt=0)
    letzai_timeout: float = Field(default=30.0, gt=0)

    redis_url: str = "redis://localhost:6379/0"
    database_url: str = "sqlite:///letzflow.db"

    s3_endpoint_url: str | None = None
    s3_bucket: str = "letzflow"
    s3_prefix: str = ""
    #: Presigned GET URLs' lifetime in seconds.
    s3_presign_expiry: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    #: Redis visibility timeout (s). Every countdown must stay well below it.
    letzflow_visibility_timeout: int = Field(default=3600, ge=60)
    #: Per-step deadlines (s) by job kind.
    letzflow_image_deadline: int = Field(default=600, ge=5)
    letzflow_video_deadline: int = Field(default=1800, ge=5)
    #: Reconciler period (s): every worker offers to run it this often; one at a time runs (Redis lock).
    letzflow_reconcile_every: float = Field(default=5.0, gt=0)
    #: A worker whose heartbeat is older than this (s) is taken for dead and the steps it held re-kicked.
    letzflow_worker_dead_after: float = Field(default=12.0, ge=3)
    #: A step whose lost POST answer cannot be matched to a listed job: ``stop`` shows it ``unconfirmed``
    #: (never risks paying twice; ``letzflow retry --unconfirmed`` resolves it), ``resubmit`` POSTs again.
    letzflow_unconfirmed: Literal["stop", "resubmit"] = "stop"
    #: Listing looks (each after a backoff) before a lost answer's step is judged unconfirmed.
    letzflow_list_attempts: int = Field(default=6, ge=1, le=50)
    letzflow_log_level: str = "INFO"
    #: Public base URL of ``letzflow webhooks`` (e.g. ``https://hooks.example.com/letzflow``). Set: every
    #: create call carries ``webhookUrl`` = this + ``/`` + a per-POST token, and a job is looked at when
    #: LetzAI calls it (polling stays the fallback). Unset: polling only.
    letzflow_webhook_url: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.letzai_simulator and not self.letzai_api_key:
            raise ConfigError(
                "LETZAI_API_KEY is not set: put your LetzAI API key in the environment or in .env "
                "(or set LETZAI_SIMULATOR=1 to run against the local simulator)"
            )
        if self.letzflow_webhook_url:
            url = self.letzflow_webhook_url.rstrip("/")
            if not url.startswith(("https://", "http://")) or "?" in url or "#" in url:
                raise ConfigError(
                    f"LETZFLOW_WEBHOOK_URL={self.letzflow_webhook_url!r} is not a base URL: give the public "
                    "http(s) address of `letzflow webhooks`, without query or fragment "
                    "(e.g. https://hooks.example.com/letzflow), or unset it to poll only"
                )
            self.letzflow_webhook_url = url
        return self

    @property
    def api_key(self) -> str:
        """The key to send; the simulator accepts any non-empty key."""
        return self.letzai_api_key or "sim-key"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once. Raises ConfigError with the variable's name when one is wrong."""
    try:
        return Settings()
    except ConfigError:
        raise
    except Exception as exc:  # pydantic's ValidationError: name the variable
        text = str(exc)
        if "LETZAI_API_KEY" in text:
            raise ConfigError(text.split("[type=")[0].split("Value error, ")[-1].strip()) from exc
        raise ConfigError(f"invalid letzflow settings: {text}") from exc
