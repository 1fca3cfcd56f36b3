"""A private PostgreSQL server for one test, which the test may stop and start at will.

The shared server (GEMBOT_TEST_POSTGRES_URL) serves every other test and must keep running, so a
test that takes PostgreSQL down gets its own: `initdb` into a fresh temporary directory, listening
on 127.0.0.1 on a free port (its Unix socket in that directory too), trust authentication, no
fsync (nothing here needs to survive a power cut).

    with PrivateCluster() as cluster:      # initdb and start
        url = cluster.create_database("gembot")
        cluster.stop()                     # pg_ctl stop -m fast: connections are cut, port closed
        cluster.start()

initdb and the server refuse to run as root, and CI runs as root: there every PostgreSQL command
runs as the `postgres` user (`runuser`), which owns the directory. The directory is made under
/tmp then, because pytest's own temporary directories are private to root.

When the server binaries are missing the fixture fails the test with one line: a missing
dependency must not pass for a skipped test.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from core.store.db import make_engine
from tests.support.servers import free_port

OWNER = "postgres"
SUPERUSER = "postgres"
# Seconds pg_ctl waits for the server to start or stop (a loaded 2-core machine can be slow).
PG_CTL_WAIT = 60


class ClusterUnavailable(Exception):
    """A private cluster cannot be made on this machine; the message says why, in one line."""


def server_bindir() -> Path:
    """The directory holding `initdb`, `pg_ctl` and `postgres` (the newest installed version)."""
    candidates: list[Path] = []
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, timeout=10)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    # pg_config may come from libpq-dev alone; Debian keeps each server version in its own directory.
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=_version, reverse=True)]
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise ClusterUnavailable(
        "the PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
        "install the postgresql package (Debian: apt-get install postgresql)"
    )


def _version(bindir: str) -> tuple[int, ...]:
    number = Path(bindir).parent.name
    return tuple(int(part) for part in number.split(".") if part.isdigit())


class PrivateCluster:
    """One PostgreSQL data directory and its server; see the module doc."""

    def __init__(self) -> None:
        self.bindir = server_bindir()
        self._as_owner = self._owner_prefix()
        self.port = free_port()
        # Under /tmp when `postgres` owns it (root's pytest directories are closed to that user);
        # a short path either way, as the socket's full name must fit in 107 bytes.
        parent = "/tmp" if self._as_owner else None
        self.directory = Path(tempfile.mkdtemp(prefix="gembot-pg-", dir=parent))
        self.data = self.directory / "data"
        self.log_path = self.directory / "server.log"
        self.running = False
        if self._as_owner:
            owner = pwd.getpwnam(OWNER)
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)

    # -- lifecycle --------------------------------------------------------------------------

    def create(self) -> PrivateCluster:
        """initdb, with the settings that keep it to loopback and this directory."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
            "--no-instructions",
        )
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.directory}'",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
        }
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/support/pg_cluster.py\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        return self

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log_path), "-w", "-t", str(PG_CTL_WAIT), "start"
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` disconnects every client and shuts down cleanly, as a restart does."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", str(PG_CTL_WAIT), "stop")
        self.running = False

    def close(self) -> None:
        """Stop the server if it runs (immediately, if a clean stop fails) and delete everything."""
        try:
            if self.running:
                try:
                    self.stop()
                except ClusterUnavailable:
                    self.stop("immediate")
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> PrivateCluster:
        try:
            self.create()
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- using it ---------------------------------------------------------------------------

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        admin = make_engine(self.url()).execution_options(isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def log(self) -> str:
        """The server's log so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # -- plumbing ---------------------------------------------------------------------------

    @staticmethod
    def _owner_prefix() -> list[str]:
        if os.geteuid() != 0:
            return []
        if shutil.which("runuser") is None:
            raise ClusterUnavailable("running as root needs `runuser` (util-linux) to start PostgreSQL")
        try:
            pwd.getpwnam(OWNER)
        except KeyError:
            raise ClusterUnavailable(
                f"running as root needs a {OWNER!r} user to own a private PostgreSQL cluster"
            ) from None
        return ["runuser", "-u", OWNER, "--"]

    def _run(self, tool: str, *args: str) -> None:
        # PG* variables (PGPORT, PGDATA...) of the caller must not redirect the private server.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        command = [*self._as_owner, str(self.bindir / tool), *args]
        done = subprocess.run(
            command, cwd=self.directory, env=env, capture_output=True, text=True, timeout=PG_CTL_WAIT + 30
        )
        if done.returncode != 0:
            output = (done.stderr or done.stdout).strip().splitlines()
            reason = output[-1] if output else f"exit code {done.returncode}"
            raise ClusterUnavailable(f"{tool} failed: {reason}; server log: {self.log()[-2000:]!r}")


@pytest.fixture
def private_postgres() -> Iterator[PrivateCluster]:
    """A running private cluster for this test (see the module doc); always stopped and deleted after."""
    try:
        cluster = PrivateCluster().__enter__()
    except ClusterUnavailable as exc:
        problem = str(exc)
    else:
        try:
            yield cluster
        finally:
            cluster.close()
        return
    # Outside the except block, so the report is this one line.
    pytest.fail(f"a private PostgreSQL cluster cannot be made: {problem}", pytrace=False)
