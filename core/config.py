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

from core.secrets_policy import DEV_SIGNING_KEY, INGEST_SECRET_FILE, SIGNING_KEY_FILE, read_secret_file

DEFAULT_SIGNING_KEY = DEV_SIGNING_KEY  # refused wherever the API is reachable (core/secrets_policy.py)


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
    # HMAC key for playback tokens; default: <data_dir>/signing-key (abr dev / abr migrate), else the dev value
    signing_key: str = DEFAULT_SIGNING_KEY
    signing_key_id: str | None = None  # its `kid`; default: derived from the key (core/services/playback.py)
    signing_keys_previous: str = ""  # comma separated `kid:secret` (or bare secrets) still accepted
    # Wraps every asset's content key at rest (encrypted playback): 32 bytes, hex or base64. Unset:
    # generated once into `{data_dir}/key-master` (not in production, where it must be set).
    key_master: str | None = None
    public_url: str | None = None  # how clients reach the API/origin, e.g. https://video.example
    host: str = "127.0.0.1"
    port: int = 8000
    log_json: bool = False
    access_log: bool | None = None  # one line per request; default: on with uvicorn, off with Granian (its speed)
    metrics_token: str | None = None  # when set, GET /metrics needs `Authorization: Bearer <token>`
    log_level: str = "INFO"
    max_upload_bytes: int = Field(default=20 * 1024**3, gt=0)
    max_body_bytes: int = Field(default=1024**2, gt=0)  # any other request body (JSON, forms): larger is 413
    max_duration: float = Field(default=12 * 3600, gt=0)  # seconds of source
    max_pixels: int = Field(default=8192 * 4320, gt=0)  # width x height of the source picture
    max_frame_rate: float = Field(default=240, gt=0)
    max_streams: int = Field(default=32, gt=0)
    rate_limit: float = Field(default=20, ge=0)  # management API requests/s per key (0: off)
    rate_burst: int = Field(default=100, ge=1)
    ffmpeg_timeout: float = Field(default=6 * 3600, gt=0)
    worker_concurrency: int = Field(default=1, ge=1)
    # Chunked parallel encoding (core/services/chunked.py): long CFR sources are cut
    # into chunks of chunk_duration seconds (rounded down to whole segments) that any
    # transcode worker encodes; sources shorter than chunk_min_source (default 2 x
    # chunk_duration) take the single-worker path.
    chunk_duration: float = Field(default=60.0, gt=0)
    # Sources longer than this get a per-title ("auto") ladder unless their settings name one
    # (core/media/analysis.py). Unset (the default): a per-title ladder is asked for per asset with
    # `"ladder": "auto"`. On the chunked path the analysis runs beside chunk 0 and does not delay
    # `playable`; on the single-worker path it still runs before the encode and delays it.
    auto_ladder_min_duration: float | None = Field(default=None, ge=0)
    # Sources that take the chunked path get a per-title ladder unless their settings name one: there
    # the analysis runs beside chunk 0 (which starts at once with the fixed table), so it costs CPU
    # (<= 25 % of the encode, bench/quality.py) but not time to `playable`. False: the fixed table.
    auto_ladder_chunked: bool = True
    chunk_min_source: float | None = Field(default=None, ge=0)
    # H.264/H.265 VOD: the first segment of every rung is this many seconds (then segment_duration),
    # on the chunked and single-worker paths; `playable` waits for x264 to make it. Chunk 0 of 1080p
    # footage to its first segments: 11.1 CPU s with 4 s, 3.4 with 1 s, 2.0 with 0.5 s (README
    # "Benchmarks": 1 s leaves 1080p too near the 3 s target). 0: every segment equal.
    first_segment_duration: float = Field(default=0.5, ge=0)
    worker_metrics_port: int = Field(default=0, ge=0, lt=65536)  # `abr worker` serves /metrics here (0: off)
    job_stale_after: float = Field(default=60.0, gt=0)  # s without heartbeat before a job is resent
    job_max_attempts: int = Field(default=3, ge=1)
    job_resend_after: float = Field(default=600.0, gt=0)  # s a queued job waits before its message is sent again
    reconcile_interval: float = Field(default=15.0, gt=0)
    cors_origins: str = "*"
    origin_fast_path: bool = True  # answer cached manifests and page-cached segments before routing (api/origin_fastpath.py)
    origin_memory_cache_mb: int = Field(default=64, ge=0)  # whole recent segments kept in memory per API process (0: off)
    # `abr api --front nginx`: nginx on host:port sends local VOD segments itself, the API behind it
    # on a loopback port answers the rest (core/origin/front.py).
    front: Literal["none", "nginx"] = "none"
    front_workers: int = Field(default=1, ge=1, le=64)  # nginx worker processes of the front
    front_prewarm: int = Field(default=1000, ge=0, le=100_000)  # ids of the newest assets the front links at start
    front_index: str | None = None  # set by `abr api --front` for its API processes: where they link ids for nginx
    perl_module: str | None = None  # ngx_http_perl_module.so (the front); default: where Debian's libnginx-mod-http-perl puts it
    allow_private_urls: bool = False  # URL import from loopback/private ranges (tests, trusted LANs)
    import_timeout: float = Field(default=3600, gt=0)
    # Live (core/live): RTMP ingest by nginx's RTMP module, started by `abr ingest` / `abr dev`.
    rtmp_port: int = Field(default=1935, gt=0, lt=65536)
    nginx: str | None = None  # the nginx binary `abr ingest`/`abr dev` run; default: nginx on PATH, /usr/sbin/nginx
    rtmp_module: str | None = None  # ngx_rtmp_module.so; default: where Debian's libnginx-mod-rtmp puts it
    rtmp_host: str | None = None  # host named in ingest URLs; default: public_url's host, else `host`
    rtmp_pull_url: str | None = None  # where live workers read pushed streams; default rtmp://127.0.0.1:{rtmp_port}/live
    ingest_secret: str | None = None  # guards the nginx callbacks; default: <data_dir>/ingest-secret, else derived
    # SRT push (core/live/srt_ingest.py): one UDP port for every publisher, routed by streamid; `abr ingest`.
    srt_port: int = Field(default=8890, ge=0, lt=65536)  # 0: no SRT listener
    srt_latency_ms: int = Field(default=200, ge=20, le=8000)  # receiver buffer for retransmissions (SRTO_LATENCY)
    srt_relay_host: str = "127.0.0.1"  # where the listener re-serves each publisher's MPEG-TS to live workers
    srt_relay_port: int = Field(default=8891, gt=0, lt=65536)
    srt_pull_url: str | None = None  # where live workers read that; default http://127.0.0.1:{srt_relay_port}
    live_reconnect_grace: float = Field(default=30.0, ge=1, le=3600)  # a source back within this continues
    live_dvr_window: float = Field(default=120.0, ge=6, le=86400)  # default DVR window, seconds
    # A live stream survives its worker (core/live/takeover.py): the owning run beats this often, and
    # a stream whose worker was silent for live_takeover_after seconds is sent to another worker.
    live_heartbeat_interval: float = Field(default=2.0, gt=0, le=60)
    live_takeover_after: float = Field(default=6.0, ge=1, le=600)
    # A stream taken over more than live_max_takeovers times within live_takeover_window seconds is
    # errored (`worker_lost`): whatever kills its workers would otherwise kill one after another.
    live_max_takeovers: int = Field(default=5, ge=1, le=1000)
    live_takeover_window: float = Field(default=600.0, ge=10, le=86400)
    # Networks (comma separated CIDRs) a live pull may reach besides public addresses: the camera LAN.
    # Cloud metadata addresses stay refused inside them (core/live/pull_guard.py).
    live_pull_allow_networks: str = ""
    image_concurrency: int = Field(default=2, ge=1, le=64)  # ffmpeg image jobs at once, per API process
    image_queue_timeout: float = Field(default=20, gt=0)  # s a request waits for a slot before 503
    preview_per_playback_id: int = Field(default=8, ge=1)  # live preview.mjpeg streams open at once, per process
    preview_per_process: int = Field(default=64, ge=1)
    max_image_variants: int = Field(default=500, ge=1)  # stored thumbnails/animated previews per asset (then 422)
    upload_expiry: float = Field(default=24 * 3600, gt=0)  # s a direct-upload URL stays usable
    webhook_backoff: str = "10,30,120,600,3600"  # s between webhook attempts (comma separated); attempts = n + 1
    webhook_timeout: float = Field(default=10, gt=0)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @field_validator("live_pull_allow_networks")
    @classmethod
    def _networks(cls, v: str) -> str:
        import ipaddress

        for item in (p.strip() for p in v.split(",")):
            if item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError as exc:
                    raise ValueError(f"not a network (CIDR): {item!r}") from exc
        return v

    @model_validator(mode="after")
    def _secrets_from_data_dir(self) -> Settings:
        # `abr dev` / `abr migrate` keep generated secrets in the data dir; the environment wins.
        for field, name in (("signing_key", SIGNING_KEY_FILE), ("ingest_secret", INGEST_SECRET_FILE)):
            if field not in self.model_fields_set and (stored := read_secret_file(self.data_dir / name)):
                setattr(self, field, stored)
        return self

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
    def resolved_chunk_min_source(self) -> float:
        return self.chunk_min_source if self.chunk_min_source is not None else 2 * self.chunk_duration

    @property
    def webhook_backoff_s(self) -> list[float]:
        return [float(v) for v in self.webhook_backoff.split(",") if v.strip()]

    @property
    def static_api_keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.split(",") if k.strip()]


def get_settings(**overrides) -> Settings:
    return Settings(**overrides)


def generate_api_key() -> str:
    return "abr_" + secrets.token_urlsafe(32)
