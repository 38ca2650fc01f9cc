"""Settings, from `ABR_*` environment variables.

Read once at an entry point (`abr …`, the app factory, the Celery app) and
passed down as values: nothing below the entry points calls `get_settings()`.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SIGNING_KEY = "dev-signing-key-change-me"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ABR_", extra="ignore")

    env: Literal["development", "production", "test"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None  # default: sqlite file under data_dir
    broker_url: str | None = None  # default: kombu's SQLAlchemy transport on a sqlite file
    storage_url: str | None = None  # default: local directory under data_dir
    s3_endpoint_url: str | None = None
    s3_presign: bool = False  # origin redirects segment GETs to presigned URLs
    ffmpeg: str | None = None  # default: the binary shipped by imageio-ffmpeg
    api_keys: str = ""  # comma separated; accepted as admin keys in addition to stored ones
    signing_key: str = DEFAULT_SIGNING_KEY  # HMAC key for playback tokens
    signing_key_id: str | None = None  # its `kid`; default: derived from the key (core/services/playback.py)
    signing_keys_previous: str = ""  # comma separated `kid:secret` (or bare secrets) still accepted
    public_url: str | None = None  # how clients reach the API/origin, e.g. https://video.example
    host: str = "127.0.0.1"
    port: int = 8000
    log_json: bool = False
    log_level: str = "INFO"
    max_upload_bytes: int = Field(default=20 * 1024**3, gt=0)
    ffmpeg_timeout: float = Field(default=6 * 3600, gt=0)
    worker_concurrency: int = Field(default=1, ge=1)
    cors_origins: str = "*"
    allow_private_urls: bool = False  # URL import from loopback/private ranges (tests, trusted LANs)
    import_timeout: float = Field(default=3600, gt=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> Settings:
        # A default secret is fine on a laptop and a vulnerability anywhere else.
        if self.env == "production" and self.signing_key == DEFAULT_SIGNING_KEY:
            raise ValueError("ABR_SIGNING_KEY must be set to a secret value when ABR_ENV=production")
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'abr.sqlite'}"

    @cached_property
    def resolved_broker_url(self) -> str:
        return self.broker_url or f"sqla+sqlite:///{self.data_dir / 'broker.sqlite'}"

    @cached_property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{self.data_dir / 'storage'}"

    @property
    def static_api_keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]


def get_settings(**overrides) -> Settings:
    return Settings(**overrides)


def generate_api_key() -> str:
    return "abr_" + secrets.token_urlsafe(32)
