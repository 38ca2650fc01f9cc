"""Start a real `abr worker` process for a test and stop it (and its pool) afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cli.dev import stop_groups


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
            stop_groups([proc], grace=15)
