"""Gembot as it runs in production, in a subprocess: `gembot serve --http` (gunicorn) against the stand-ins.

    env = server_env(slack_standin, gemini_standin, database_url)
    with GembotProcess(env, workers=2, log_dir=tmp_path) as server:
        server.sender.command("/ask", "Are you there?", ...)
        server.worker_pids()       # gunicorn's workers: kill one, read their memory

Each process binds its own free loopback port, so two of them on one database stand for two
hosts behind a load balancer. The process's log (gunicorn's and Gembot's) goes to a file rather
than a pipe, which a long run would fill and block; `log()` reads it. Used by the `serve` tests,
the fault, multi-worker and load tests, and `benchmarks/load.py`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Protocol

from tests.support.slack_harness import DEFAULT_SIGNING_SECRET, SlackSender

ROOT = Path(__file__).resolve().parents[2]


class _Slack(Protocol):
    # Read-only: the stand-ins compute their URLs from the port they bound.
    @property
    def bot_token(self) -> str: ...

    @property
    def api_url(self) -> str: ...


class _Gemini(Protocol):
    @property
    def api_key(self) -> str: ...

    @property
    def base_url(self) -> str: ...


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(
    slack: _Slack, gemini: _Gemini | None, database_url: str, *, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a `gembot serve` aimed at the stand-ins, without the caller's Slack, Gemini
    and Gembot settings (a developer's `.env` values must not leak in); `extra` adds or overrides."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GEMINI_", "GEMBOT_", "GOOGLE_"))
    }
    env.update(
        DATABASE_URL=database_url,
        SLACK_BOT_TOKEN=slack.bot_token,
        SLACK_SIGNING_SECRET=DEFAULT_SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        GEMBOT_EMBEDDER="local",
        GEMBOT_GEMINI_RETRIES="0",
        PYTHONPATH=str(ROOT),
    )
    if gemini is not None:
        env.update(GEMINI_API_KEY=gemini.api_key, GEMINI_BASE_URL=gemini.base_url)
    env.update(extra or {})
    return env


class GembotProcess:
    """`python -m bot.cli.main serve --http` in a subprocess; see the module doc.

    Run from `log_dir`, so that no `.env` of the checkout is read.
    """

    def __init__(self, env: dict[str, str], *, log_dir: Path, workers: int = 1, threads: int = 4) -> None:
        self.env = env
        self.workers = workers
        self.threads = threads
        self.port = free_port()
        self.log_dir = log_dir
        self.log_path = log_dir / f"gembot-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> GembotProcess:
        """Start the server; `wait_healthy()` (or `__enter__`) waits until it answers."""
        self._log_file = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot.cli.main",
                "serve",
                "--http",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--threads",
                str(self.threads),
            ],
            cwd=self.log_dir,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_healthy(self, timeout: float = 60.0) -> GembotProcess:
        """Wait until every worker has booted and `/healthz` answers 200."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited with {self.process.returncode}:\n{self.log()}")
            if len(self.worker_pids()) >= self.workers and self.get("/healthz")[0] == 200:
                return self
            time.sleep(0.1)
        raise AssertionError(f"the server did not answer /healthz in {timeout:g} s:\n{self.log()}")

    def terminate(self) -> None:
        """SIGTERM, as a supervisor stops it, without waiting: `stop()` waits (stop several at once)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; returns the exit code (killed, and an error, if it overstays `timeout`)."""
        self.terminate()
        process, self.process = self.process, None
        if process is None:
            return 0
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise AssertionError(
                f"gunicorn did not stop on SIGTERM in {timeout:g} s:\n{self.log()}"
            ) from None
        finally:
            if self._log_file is not None:
                self._log_file.close()
        return code

    def __enter__(self) -> GembotProcess:
        self.start()
        try:
            return self.wait_healthy()
        except BaseException:
            with contextlib.suppress(AssertionError):
                self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- looking in -------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        """The gunicorn master's pid (the `gembot serve` process itself)."""
        assert self.process is not None
        return self.process.pid

    def worker_pids(self) -> list[int]:
        """The live worker processes: the master's children, from /proc."""
        if self.process is None:
            return []
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # pid (comm) state ppid ...: comm may hold spaces, so split after its closing paren.
            fields = stat.rsplit(")", 1)[-1].split()
            if fields[0] != "Z" and int(fields[1]) == self.process.pid:
                children.append(int(entry.name))
        return sorted(children)

    def log(self) -> str:
        """Everything the server wrote so far (stdout and stderr)."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def events_url(self) -> str:
        return self.url + "/slack/events"

    @property
    def sender(self) -> SlackSender:
        return SlackSender(self.events_url, DEFAULT_SIGNING_SECRET)

    def get(self, path: str, *, timeout: float = 5.0) -> tuple[int, str]:
        """GET `path`: (status, body), or (0, reason) when nothing answered."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
        except (urllib.error.URLError, OSError) as error:
            return 0, str(error)


def rss_kib(pid: int) -> int:
    """A process's resident memory in KiB (VmRSS), or 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
