"""`abr ingest`: run nginx with the RTMP module as the live push ingest, configured from docker/nginx-rtmp.conf.

nginx gets its own prefix under the data dir (`<data_dir>/ingest/`: config,
pid, error log), so it never touches the system's nginx. `abr dev` starts it
too when nginx and the module are installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from core.config import Settings
from core.live.ingest import (
    RtmpConfig,
    find_rtmp_module,
    ingest_secret,
    nginx_argv,
    write_rtmp_conf,
)


def find_nginx() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx")
                                          if os.access(p, os.X_OK)), None)


def rtmp_config(settings: Settings, *, api_url: str | None = None, prefix: Path | None = None) -> RtmpConfig | None:
    """The ingest configuration, or None when nginx or its RTMP module is not installed."""
    module = find_rtmp_module()
    if module is None or find_nginx() is None:
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
    return subprocess.Popen(nginx_argv(find_nginx(), config, conf), **popen)


def run_ingest(settings: Settings, api_url: str | None = None) -> int:
    config = rtmp_config(settings, api_url=api_url)
    if config is None:
        print("nginx with the RTMP module is not installed (Debian: apt-get install nginx libnginx-mod-rtmp)")
        return 1
    conf = write_rtmp_conf(config)
    print(f"RTMP ingest on rtmp://0.0.0.0:{config.port}/live/<stream_key> (callbacks to {config.api_url})",
          flush=True)
    os.execv(find_nginx(), nginx_argv(find_nginx(), config, conf))
    return 0  # not reached
