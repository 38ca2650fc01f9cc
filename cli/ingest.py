"""`abr ingest`: run nginx with the RTMP module as the live push ingest, configured from docker/nginx-rtmp.conf.

nginx gets its own prefix under the data dir (`<data_dir>/ingest/`: config,
pid, error log), so it never touches the system's nginx. `abr dev` starts it
too when nginx and the module are installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
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


def run_ingest(settings: Settings, api_url: str | None = None) -> int:
    config = rtmp_config(settings, api_url=api_url)
    if config is None:
        print(missing(settings), file=sys.stderr)
        return 1
    conf = write_rtmp_conf(config)
    print(f"RTMP ingest on rtmp://0.0.0.0:{config.port}/live/<stream_key> (callbacks to {config.api_url})",
          flush=True)
    nginx = find_nginx(settings.nginx)
    os.execv(nginx, nginx_argv(nginx, config, conf))
    return 0  # not reached
