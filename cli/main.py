"""The `abr` command: the one place that imports both the API and the workers."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import sys

from core.config import Settings, get_settings
from core.logging import configure_logging

log = logging.getLogger("abr.cli")


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    if getattr(args, "host", None):
        overrides["host"] = args.host
    if getattr(args, "port", None):
        overrides["port"] = args.port
    settings = get_settings(**overrides)
    configure_logging(json_lines=settings.log_json, level=settings.log_level)
    return settings


def cmd_migrate(args: argparse.Namespace) -> int:
    from cli.migrate import downgrade, upgrade

    settings = _settings(args)
    if args.direction == "down":
        downgrade(settings.resolved_database_url, args.revision or "base")
    else:
        from cli.local_secrets import ensure_api_key, prepare_secrets
        from core.secrets_policy import API_KEY_FILE

        # First run: strong secrets instead of development defaults (none for what the environment sets).
        settings, made = prepare_secrets(settings)
        upgrade(settings.resolved_database_url, args.revision or "heads")
        _, key_made = ensure_api_key(settings) if not args.revision else (None, False)  # keys need the head schema
        for path in made + ([settings.data_dir / API_KEY_FILE] if key_made else []):
            print(f"generated {path} (0600)", file=sys.stderr)
    print(f"database at {args.revision or ('base' if args.direction == 'down' else 'head')}")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from core.db.engine import make_engine
    from core.services.keys import create_key

    settings = _settings(args)
    with Session(make_engine(settings.resolved_database_url)) as session:
        row, plaintext = create_key(session, name=args.name, scopes=args.scopes)
    print(plaintext)
    print(f"(id {row.id}, scopes: {row.scopes}; shown once, stored hashed)", file=sys.stderr)
    return 0


def cmd_keys_ls(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from core.db.engine import make_engine
    from core.services.keys import list_keys

    settings = _settings(args)
    with Session(make_engine(settings.resolved_database_url)) as session:
        for key in list_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
            print(f"{key.id}\t{key.prefix}…\t{key.scopes}\t{state}\t{key.name}")
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from sqlmodel import Session

    from core.db.engine import make_engine
    from core.errors import NotFound
    from core.services.keys import revoke_key

    settings = _settings(args)
    with Session(make_engine(settings.resolved_database_url)) as session:
        try:
            revoke_key(session, args.key_id)
        except NotFound as exc:
            print(exc.message, file=sys.stderr)
            return 4
    print(f"revoked {args.key_id}")
    return 0


def app_factory():
    """For `uvicorn --factory` and multi-process API servers: one app per server process."""
    import gc

    from api.app import create_app

    settings = get_settings()
    # Server worker processes import this factory afresh: configure their logging here too.
    configure_logging(json_lines=settings.log_json, level=settings.log_level)
    app = create_app(settings)
    # Everything alive now (modules, the app, ~130k objects) lives as long as the
    # process: freezing it keeps the collector from walking it again. A full
    # collection over it took ~60 ms, one stall of every request in flight, and
    # the largest part of the origin's p99 at 200 connections (bench/origin.py).
    gc.freeze()
    # Each request allocates a few hundred containers that die young; at the default
    # threshold (700) a young collection ran every couple of requests. perf on a server
    # process replaying bench/origin.py's list: the collector's share of its CPU 5.4 % at
    # (700, 10, 10), 3.1 % at (10000, 10, 10).
    gc.set_threshold(10_000, 10, 10)
    return app


def granian_runtime(workers: int) -> dict:
    """Granian's Rust runtime per process, measured on bench/origin.py's realistic list.

    Several processes: one single-threaded runtime each — with 2 processes on one core it cost
    5-18 % less CPU per GB served than 2 threads of the multi-threaded runtime (fewer threads
    handing work to each other; 1.28-1.32 vs 1.36-1.41 s and 1.25-1.32 vs 1.45-1.49 s in two
    sets). One process: 2 threads, so the Rust I/O can use a second core beside Python (one
    process on 2 cores: 1,861-2,047 vs 1,706-1,844 req/s).
    """
    if workers > 1:
        return {"runtime_mode": "st", "runtime_threads": 1}
    return {"runtime_mode": "mt", "runtime_threads": 2}


def granian_app_factory():
    """`app_factory` behind X-Forwarded-For/-Proto from 127.0.0.1, as uvicorn's `proxy_headers` does."""
    return behind_local_proxy(app_factory())


def behind_local_proxy(app):
    """`app` taking the client and scheme from X-Forwarded-For/-Proto sent by 127.0.0.1 (Granian's wrapper)."""
    from granian.utils.proxies import wrap_asgi_with_proxy_headers

    proxied = wrap_asgi_with_proxy_headers(app, trusted_hosts="127.0.0.1")

    @functools.wraps(app)
    def front(scope, receive, send):
        # The wrapper changes a scope only when X-Forwarded-For is there, but it parses the
        # client's address (`ipaddress`) on every request first: 3.6 µs a call against 0.25 µs
        # for this check, ~6 % of the Python time of a segment answer (bench/origin.py).
        for name, _ in scope.get("headers", ()):
            if name == b"x-forwarded-for":
                return proxied(scope, receive, send)
        return app(scope, receive, send)

    return front


def _granian_level(level: str) -> str:
    level = level.lower()
    return level if level in ("critical", "error", "warning", "info", "debug") else "info"


def cmd_api(args: argparse.Namespace) -> int:
    from core.secrets_policy import refusal

    settings = _settings(args)
    refused = refusal(settings)
    if refused:  # before binding anything: a shipped or weak secret never guards a reachable API
        print(refused, file=sys.stderr, flush=True)
        return 2
    front = args.front or settings.front
    if front == "nginx":
        from cli.front import serve_with_front

        # nginx takes host:port; the API reads its loopback port from the environment serve_with_front sets.
        return serve_with_front(settings, lambda: _serve_api(get_settings(), args))
    return _serve_api(settings, args)


def _serve_api(settings: Settings, args: argparse.Namespace) -> int:
    access_log = settings.access_log if settings.access_log is not None else args.server == "uvicorn"
    if args.server == "granian":
        # Granian (the default): HTTP in Rust, and the ASGI `pathsend` extension by which
        # the origin hands it whole segment files to send without them passing through
        # Python (api/origin_fastpath.py); half uvicorn's CPU per GB served (bench/origin.py).
        from granian import Granian

        from core.logging import granian_log_config

        Granian("cli.main:granian_app_factory", factory=True, address=settings.host, port=settings.port,
                interface="asgi", workers=args.workers,
                websockets=False, log_access=access_log, log_level=_granian_level(settings.log_level), backlog=2048,
                log_dictconfig=granian_log_config(json_lines=settings.log_json), workers_kill_timeout=10,
                **granian_runtime(args.workers)).serve()
        return 0
    import uvicorn

    from api.sendfile_server import SendfileProtocol

    # uvicorn's httptools protocol plus `pathsend` answered with sendfile(2) (api/sendfile_server.py).
    uvicorn.run("cli.main:app_factory", factory=True, host=settings.host, port=settings.port,
                workers=args.workers, log_config=None, proxy_headers=True, timeout_graceful_shutdown=10,
                access_log=access_log, http=SendfileProtocol)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    metrics_port = args.metrics_port if args.metrics_port is not None else settings.worker_metrics_port
    if metrics_port and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Before prometheus-client is imported: the pool's processes then share one set of metrics.
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="abr-metrics-")
    from core.metrics import serve_worker_metrics
    from workers.celery_app import app

    serve_worker_metrics(metrics_port)
    # Keep our root handler (redacted lines, request/job ids, ABR_LOG_JSON) instead of Celery's own.
    app.conf.worker_hijack_root_logger = False
    # Queues are listed in priority order ("priority" queue_order_strategy on Redis):
    # a worker on `live,transcode` takes live work first. Recommended layout: live
    # workers on their own (`--queues live`), transcode workers `--queues transcode,default`.
    if args.quiet:  # `abr dev`: no banner, no root warning; the worker's log level says the rest
        import warnings

        warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")
    argv = ["--quiet"] if args.quiet else []
    argv += ["worker", "-Q", args.queues, "-c", str(args.concurrency or settings.worker_concurrency),
             "-n", f"{args.name or 'abr'}-{os.getpid()}@%h", "--loglevel", settings.log_level]
    if settings.resolved_broker_url.startswith("sqla+"):
        # The SQLAlchemy transport has no broadcast: gossip/mingle would only poll in vain.
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    app.worker_main(argv)
    return 0


def cmd_dev(args: argparse.Namespace) -> int:
    from cli.dev import run_dev

    return run_dev(_settings(args), verbose=args.verbose)


def cmd_ingest(args: argparse.Namespace) -> int:
    from cli.ingest import run_ingest

    return run_ingest(_settings(args), api_url=args.api_url, rtmp=not args.no_rtmp, srt=not args.no_srt)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="abr", description="abr-origin: self-hostable HLS/DASH video platform")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("dev", help="API + one worker on embedded defaults (SQLite, local disk)")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show every component's output and INFO logs (default: warnings, then a short banner)")
    p.set_defaults(func=cmd_dev)

    p = sub.add_parser("api", help="serve the API and origin")
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--workers", type=int, default=1, help="API processes")
    p.add_argument("--server", choices=["granian", "uvicorn"], default=os.environ.get("ABR_SERVER", "granian"),
                   help="ASGI server (default granian, or ABR_SERVER)")
    p.add_argument("--front", choices=["none", "nginx"],
                   help="nginx in front: it sends local VOD segments itself, the API answers the rest "
                        "(default ABR_FRONT, none); nginx workers: ABR_FRONT_WORKERS")
    p.set_defaults(func=cmd_api)

    p = sub.add_parser("worker", help="run a Celery worker")
    p.add_argument("--queues", default="live,transcode,default",
                   help="comma separated, highest priority first (live, transcode, default)")
    p.add_argument("--concurrency", type=int, help="tasks at once in this worker (default ABR_WORKER_CONCURRENCY)")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus /metrics here (default ABR_WORKER_METRICS_PORT; 0 off)")
    p.add_argument("--name", help="worker name prefix shown in logs and `celery inspect` (e.g. live, transcode)")
    p.add_argument("--quiet", action="store_true", help="no start-up banner")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("ingest", help="run the live push ingest: RTMP (nginx + RTMP module) and SRT (libsrt)")
    p.add_argument("--api-url", help="where the ingest reaches the API for its callbacks (default http://127.0.0.1:PORT)")
    p.add_argument("--no-rtmp", action="store_true", help="do not start nginx-rtmp")
    p.add_argument("--no-srt", action="store_true", help="do not start the SRT listener")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("migrate", help="upgrade (default) or downgrade the database schema")
    p.add_argument("direction", nargs="?", choices=["up", "down"], default="up")
    p.add_argument("--revision")
    p.set_defaults(func=cmd_migrate)

    keys = sub.add_parser("keys", help="manage API keys").add_subparsers(dest="keys_command", required=True)
    p = keys.add_parser("create", help="create an API key and print it once")
    p.add_argument("--name", default="")
    p.add_argument("--scopes", default="admin", help="space separated: read write admin")
    p.set_defaults(func=cmd_keys_create)
    p = keys.add_parser("ls", help="list API keys (never their secrets)")
    p.set_defaults(func=cmd_keys_ls)
    p = keys.add_parser("revoke", help="revoke an API key by id")
    p.add_argument("key_id")
    p.set_defaults(func=cmd_keys_revoke)

    from cli import assets_cmd, token, upload  # client commands: HTTP only, no server imports

    token.add_parser(sub)
    upload.add_parser(sub)
    assets_cmd.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
