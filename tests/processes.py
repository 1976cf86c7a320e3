"""Long-running processes that benchmarks and drills start and stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Process:
    """A process in its own session, stopped through its process group."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log: Path):
        self.name = name
        self.command = command
        self.env = env
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self):
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process itself (not its group): a crash, not a stop."""
        os.kill(self.pid, signal.SIGKILL)
        assert self.process is not None
        self.process.wait(timeout=10)

    def stop(self, timeout: float = 20) -> None:
        if not self.alive():
            return
        assert self.process is not None
        group = os.getpgid(self.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=timeout)

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def gunicorn_command(port: int) -> list[str]:
    """ccweb under gunicorn as production runs it, on a loopback port."""
    return [
        str(Path(sys.executable).with_name("gunicorn")),
        "ccweb.wsgi",
        "--config",
        "docker/gunicorn.conf.py",
        # The command line wins over the config file's 0.0.0.0.
        "--bind",
        f"127.0.0.1:{port}",
    ]


def start_gunicorn(work_dir: Path, env: dict[str, str]) -> tuple[Process, str]:
    """ccweb under gunicorn with docker/gunicorn.conf.py on a free loopback port.

    Returns the process and its base URL once `/health` answers.
    """
    port = free_port()
    process = Process(
        "gunicorn",
        gunicorn_command(port),
        {**env, "PORT": str(port)},
        work_dir / "gunicorn.log",
    ).start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            # A long timeout: an abandoned probe would still be served later.
            urllib.request.urlopen(f"{base}/health", timeout=15).read()
            return process, base
        except OSError:
            if not process.alive():
                break
            time.sleep(0.2)
    process.stop()
    raise RuntimeError(f"gunicorn did not start:\n{process.tail()}")
