"""Process settings read from the environment (pydantic-settings), shared by every process."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_SECRET = "dev-only-change-me"  # noqa: S105 - a marker that production must replace
DEFAULT_DATABASE_URL = "postgresql+asyncpg://motcua@127.0.0.1:54329/motcua"
DbRole = Literal["request", "job", "migration"]


@dataclass(frozen=True)
class DbTimeouts:
    """How long one role's statements, lock waits and idle open transactions may last (seconds; 0 = no limit)."""

    statement: float
    lock: float
    idle_in_transaction: float
    margin: float  # asyncpg's client-side `command_timeout` is `statement` + this

    @property
    def server_settings(self) -> dict[str, str]:
        """The PostgreSQL session settings of a connection of this role."""
        return {"statement_timeout": _ms(self.statement), "lock_timeout": _ms(self.lock),
                "idle_in_transaction_session_timeout": _ms(self.idle_in_transaction)}

    @property
    def command_timeout(self) -> float | None:
        """The client's backstop when the server does not answer (a lost network, a stuck server)."""
        return self.statement + self.margin if self.statement > 0 else None


def _ms(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


class Settings(BaseSettings):
    """Everything a process needs; one instance per process, read once."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = DEFAULT_DATABASE_URL
    db_pool_size: int = 32  # at most this many connections; more requests wait for one (db_pool_timeout)
    db_pool_timeout: float = 10.0  # seconds a request waits for a connection before a 503
    db_connect_timeout: float = 5.0  # seconds to open one connection (a database that does not answer: 503)
    # Time bounds per role (seconds, 0 = none); docs/configuration.md says why each is what it is.
    db_request_statement_timeout: float = 5.0
    db_request_lock_timeout: float = 2.0
    db_request_idle_in_transaction_timeout: float = 10.0
    db_job_statement_timeout: float = 60.0
    db_job_lock_timeout: float = 10.0
    db_job_idle_in_transaction_timeout: float = 120.0
    db_migration_statement_timeout: float = 600.0
    db_migration_lock_timeout: float = 5.0
    db_migration_idle_in_transaction_timeout: float = 600.0
    db_command_timeout_margin: float = 1.0  # asyncpg's client-side timeout: the statement timeout plus this
    request_timeout_seconds: float = 30.0  # a service's own budget per request (less when the gateway says so)
    readiness_timeout_seconds: float = 2.0  # /readyz: 503 when the database cannot commit within this
    worker_nice: int = 10  # job workers yield the CPU to request handlers on a shared host
    worker_concurrency: int = 20  # jobs one worker runs at once (each holds a connection)
    log_level: str = "INFO"
    access_log: bool = True

    # Identity: the issuer that signs tokens and where its public keys are published.
    jwt_issuer: str = "http://localhost:8000"
    jwt_audience: str = "mot-cua"
    jwks_url: str = "http://127.0.0.1:8000/.well-known/jwks.json"
    jwks_cache_seconds: int = 300
    token_ttl_seconds: int = 3600
    # Secret used to derive local secrets (demo client secrets, webhook secrets, cursor HMAC).
    app_secret: str = Field(default=DEV_SECRET)

    # Public base URL used in QR codes and receipt links.
    public_base_url: str = "http://localhost:8000"

    # Gateway upstreams and limits.
    intake_url: str = "http://127.0.0.1:8101"
    workflow_url: str = "http://127.0.0.1:8102"
    postal_url: str = "http://127.0.0.1:8103"
    queue_url: str = "http://127.0.0.1:8104"
    gateway_max_body_bytes: int = 20 * 1024 * 1024
    gateway_timeout_seconds: float = 30.0
    rate_limit: str = "600/minute"
    webhook_rate_limit: str = "120000/minute"
    rate_limit_storage: str = "memory://"
    metrics_token: str | None = None  # METRICS_TOKEN: the bearer token Prometheus scrapes the gateway's /metrics with
    cors_origins: list[str] = ["*"]

    # Files (attachments) storage root for the local adapter.
    storage_dir: str = ".data/files"
    max_upload_bytes: int = 10 * 1024 * 1024

    # Dossier code (mã hồ sơ): {agency}, {yymmdd} or {yyyymmdd} (Viet Nam date) and {seq} (4 digits, daily).
    dossier_code_pattern: str = "{agency}-{yymmdd}-{seq}"

    # Time-limit model (issue 22; the 2025 texts are unconfirmed for Decree 118, so these are settings):
    # an online dossier's clock starts at the officer's acceptance; the one-stop officers are alerted this many
    # working hours after submission, and the acceptance (or one complete supplement request) is due within
    # ONLINE_ACCEPTANCE_HOURS working hours (Decree 297/2025 Art. 6: 2 and 8).
    online_acceptance_alert_hours: float = Field(2.0, ge=0, le=80)
    online_acceptance_hours: float = Field(8.0, gt=0, le=80)
    # An apology resets the return date at most once (Decree 297/2025 Art. 6.5, Decree 61 Art. 19.9).
    apology_once_only: bool = True

    # Citizen notifications: without an SMS provider they are written to <storage_dir>/notifications.jsonl.
    sms_api_url: str | None = None
    sms_api_key: str | None = None

    @model_validator(mode="after")
    def refuse_default_secrets(self) -> Settings:
        """A production process must never run with the development secret."""
        if self.environment == "production" and self.app_secret == DEV_SECRET:
            raise ValueError("APP_SECRET must be set to a real secret in production")
        return self

    def db_timeouts(self, role: DbRole) -> DbTimeouts:
        """The time bounds of a connection used for requests, jobs or migrations."""
        return DbTimeouts(
            statement=getattr(self, f"db_{role}_statement_timeout"), lock=getattr(self, f"db_{role}_lock_timeout"),
            idle_in_transaction=getattr(self, f"db_{role}_idle_in_transaction_timeout"),
            margin=self.db_command_timeout_margin,
        )

    @property
    def asyncpg_dsn(self) -> str:
        """The same URL in the form asyncpg itself accepts."""
        return self.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
