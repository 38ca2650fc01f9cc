"""`abr ingest`: the live push ingest — nginx with the RTMP module (configured from docker/nginx-rtmp.conf)
and the SRT listener (core/live/srt_ingest.py, libsrt) — until told to stop.

nginx gets its own prefix under the data dir (`<data_dir>/ingest/`: config,
pid, error log), so it never touches the system's nginx. Either part runs
when it is installed (nginx + libnginx-mod-rtmp; libsrt1.5-openssl).
`abr dev` starts both too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from core.config import Settings
from core.live.ingest import (
    RtmpConfig,
    find_nginx,
    find_rtmp_module,
    ingest_secret,
    nginx_argv,
    plan_rtmp_status,
    write_rtmp_conf,
)


def rtmp_config(settings: Settings, *, api_url: str | None = None, prefix: Path | None = None) -> RtmpConfig | None:
    """The ingest configuration, or None when nginx or its RTMP module is not installed."""
    module = find_rtmp_module(settings.rtmp_module)
    if module is None or find_nginx(settings.nginx) is None:
        return None
    return RtmpConfig(prefix=prefix or settings.data_dir / "ingest", port=settings.rtmp_port,
                      api_url=api_url or f"http://127.0.0.1:{settings.port}",
                      secret=ingest_secret(settings.signing_key, settings.ingest_secret), module_path=module,
                      run_as_root=os.geteuid() == 0)


def start_ingest(settings: Settings, *, api_url: str | None = None, prefix: Path | None = None,
                 **popen) -> subprocess.Popen | None:
    config = rtmp_config(settings, api_url=api_url, prefix=prefix)
    if config is None:
        return None
    conf = write_rtmp_conf(config)
    return subprocess.Popen(nginx_argv(find_nginx(settings.nginx), config, conf), **popen)


def missing(settings: Settings) -> str | None:
    """Why live push cannot start here (with the install line), or None when nginx and the module are there."""
    status = plan_rtmp_status(listening=False, address="", nginx=find_nginx(settings.nginx),
                              module=find_rtmp_module(settings.rtmp_module))
    return status.reason if status.reason and "not installed" in status.reason else None


def srt_available(settings: Settings) -> bool:
    from core.live import srtlib

    return bool(settings.srt_port) and srtlib.find_library() is not None


def start_srt_ingest(settings: Settings, *, api_url: str | None = None, **popen) -> subprocess.Popen | None:
    """`abr ingest --no-rtmp` as a child (abr dev, tests); None when libsrt is missing or SRT is off."""
    if not srt_available(settings):
        return None
    args = [sys.executable, "-m", "cli.main", "ingest", "--no-rtmp"]
    args += ["--api-url", api_url] if api_url else []
    return subprocess.Popen(args, **popen)


def run_ingest(settings: Settings, api_url: str | None = None, *, rtmp: bool = True, srt: bool = True) -> int:
    """RTMP (nginx as a child) and SRT (in this process) until SIGTERM/SIGINT or nginx exits."""
    from core.live.srt_ingest import ApiGate, SrtIngest

    api_url = api_url or f"http://127.0.0.1:{settings.port}"
    config = rtmp_config(settings, api_url=api_url) if rtmp else None
    use_srt = srt and srt_available(settings)
    if config is None and not use_srt:
        print(f"no ingest to run: {missing(settings) or 'RTMP is off'}; and for SRT: "
              "sudo apt-get install libsrt1.5-openssl", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    nginx = listener = None
    try:
        if config is not None:
            conf = write_rtmp_conf(config)
            nginx = subprocess.Popen(nginx_argv(find_nginx(settings.nginx), config, conf))
            print(f"RTMP ingest on rtmp://0.0.0.0:{config.port}/live/<stream_key> (callbacks to {api_url})",
                  flush=True)
        if use_srt:
            gate = ApiGate(api_url, ingest_secret(settings.signing_key, settings.ingest_secret))
            try:
                listener = SrtIngest(gate, port=settings.srt_port, relay_host=settings.srt_relay_host,
                                     relay_port=settings.srt_relay_port, latency_ms=settings.srt_latency_ms).start()
            except OSError as exc:  # SrtError too: a taken UDP port, a taken relay port
                print(f"SRT ingest not started on udp {settings.srt_port} / relay tcp {settings.srt_relay_port}: "
                      f"{exc}", file=sys.stderr, flush=True)
                return 1
            print(f"SRT ingest on srt://0.0.0.0:{settings.srt_port}?streamid=#!::r=<stream_key>,m=publish "
                  f"(relay for live workers on {settings.srt_relay_host}:{settings.srt_relay_port})", flush=True)
        while not stop.wait(0.5):
            if nginx is not None and nginx.poll() is not None:
                print("nginx exited; stopping", file=sys.stderr, flush=True)
                return 1
        return 0
    finally:
        if listener is not None:
            listener.stop()
        if nginx is not None and nginx.poll() is None:
            nginx.terminate()
            nginx.wait(10)
