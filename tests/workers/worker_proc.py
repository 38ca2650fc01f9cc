"""Start a real `abr worker` process for a test and stop it (and its pool) afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def running_worker(env: dict[str, str], *, log_path: Path, queues: str = "transcode,live,default",
                   concurrency: int = 1) -> Iterator[subprocess.Popen]:
    full_env = dict(os.environ, **env)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "worker", "--queues", queues,
                                 "--concurrency", str(concurrency)],
                                env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
