"""Private Redis and PostgreSQL servers on free ports, for tests that restart them.

The machine's shared services (6379, 5432) are never touched: each helper
starts its own server in a temporary directory and stops it (and only it)
afterwards. PostgreSQL refuses to run as root, so its cluster is made and run
as the `postgres` user with `runuser`, in a directory chowned to it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REDIS_SERVER = "/usr/bin/redis-server"


def find_pg_bin() -> Path:
    """The installed PostgreSQL's binaries, version found as .ci/run does (`ls /etc/postgresql`)."""
    versions = sorted(os.listdir("/etc/postgresql"), key=lambda v: [int(p) for p in v.split(".") if p.isdigit()],
                      reverse=True) if os.path.isdir("/etc/postgresql") else []
    versions += sorted((p.parent.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")), reverse=True)
    for version in versions:
        if (Path("/usr/lib/postgresql") / version / "bin" / "pg_ctl").exists():
            return Path("/usr/lib/postgresql") / version / "bin"
    return Path("/usr/lib/postgresql/15/bin")  # named in the reason when nothing is installed


PG_BIN = find_pg_bin()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def redis_available() -> str | None:
    """None if a private redis-server can be run here, else why not."""
    return None if os.access(REDIS_SERVER, os.X_OK) else f"{REDIS_SERVER} is not installed"


def postgres_available() -> str | None:
    if not (PG_BIN / "pg_ctl").exists():
        return f"PostgreSQL binaries not found in {PG_BIN}"
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return "running a private PostgreSQL cluster needs root (runuser -u postgres)"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user"
    return None


class PrivateRedis:
    """redis-server without persistence: a restart loses every queued message (the point of the test)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir), "--protected-mode", "no"],
            stdout=open(self.workdir / "redis.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        _wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()  # an abrupt stop: nothing is saved
            self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class PostgresCommandFailed(subprocess.CalledProcessError):
    def __str__(self) -> str:  # what PostgreSQL printed, not only its exit status
        return f"{super().__str__()}\n{(self.stderr or self.output or '')[-2000:]}"


class PrivatePostgres:
    """A throwaway PostgreSQL cluster (the installed version) on a free port, trust auth, database `test`."""

    def __init__(self, workdir: Path) -> None:
        self.workdir, self.port = workdir, free_port()
        self.data = workdir / "pgdata"

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/test"

    def _as_postgres(self, *argv: str, timeout: float = 60) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:  # say why: a bare exit status hides what PostgreSQL printed
            raise PostgresCommandFailed(done.returncode, argv, done.stdout, done.stderr)

    def init(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.workdir, "postgres", "postgres")
        os.chmod(self.workdir, 0o700)
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync", "-E", "UTF8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.workdir}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\nmax_connections = 100\n")

    def start(self) -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.workdir / "pg.log"),
                          "-w", "-t", "30", "start")
        _wait_port(self.port)

    def create_database(self, name: str = "test") -> None:
        import psycopg

        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def stop(self, mode: str = "immediate") -> None:
        """`immediate` is a crash as far as clients are concerned: every connection is cut."""
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    # Not under pytest's tmp_path: its root-only parents are reset to 0700 by every pytest
    # session that starts meanwhile, and the postgres user then loses its way to the cluster.
    workdir = Path(tempfile.mkdtemp(prefix="abr-pg-"))
    os.chmod(workdir, 0o755)
    server = PrivatePostgres(workdir / "pg")
    server.init()
    server.start()
    try:
        server.create_database()
        yield server
    finally:
        try:
            server.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(workdir, ignore_errors=True)
