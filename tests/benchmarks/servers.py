"""The processes under load: ccweb under gunicorn, the peer under uvicorn.

Both run in their own process group with their output in the run's work
folder, and are stopped by that group's id, never by name.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.benchmarks.harness import REPO
from tests.processes import Process, free_port, gunicorn_command

logger = logging.getLogger(__name__)

# Chosen once for 2 cores and used for every ccweb measurement (see "How
# ccweb runs" in docs/benchmarks.md): threads keep connections alive and
# overlap the waits on PostgreSQL, Redis and Kafka. BENCH_WEB_CONCURRENCY and
# BENCH_WEB_THREADS change it for an experiment.
WEB_CONCURRENCY = int(os.environ.get("BENCH_WEB_CONCURRENCY", "2"))
WEB_THREADS = int(os.environ.get("BENCH_WEB_THREADS", "8"))
PEER_WORKERS = 2
PEER_VENVS = Path.home() / ".cache" / "ccweb"
READY_TIMEOUT_SECONDS = 60


def web_setup() -> str:
    """How ccweb is served, in words, for the report."""
    if WEB_THREADS > 1:
        return (
            f"gunicorn, {WEB_CONCURRENCY} threaded workers x {WEB_THREADS} threads "
            "(ccweb.serving.SpreadingThreadWorker)"
        )
    return f"gunicorn, {WEB_CONCURRENCY} sync workers"


class HttpServer(Process):
    def __init__(
        self, name: str, command: list[str], env: dict[str, str], log: Path, port: int
    ):
        super().__init__(name, command, env, log)
        self.port = port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, path: str = "/health") -> HttpServer:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.tail()}")
            try:
                # Always http://127.0.0.1:port, built above.
                url = self.base_url + path
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{self.name} did not answer {path}:\n{self.tail()}")


def start_ccweb(work_dir: Path) -> HttpServer:
    """ccweb as production runs it: gunicorn with docker/gunicorn.conf.py."""
    port = free_port()
    metrics_dir = work_dir / "prometheus"
    metrics_dir.mkdir(exist_ok=True)
    for leftover in metrics_dir.glob("*.db"):
        leftover.unlink()
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "WEB_CONCURRENCY": str(WEB_CONCURRENCY),
        "WEB_THREADS": str(WEB_THREADS),
    }
    command = gunicorn_command(port)
    server = HttpServer("ccweb", command, env, work_dir / "gunicorn.log", port)
    return server.start().wait_ready()


def start_relay(work_dir: Path) -> Process:
    """The outbox relay as deployed: its own long-running process."""
    command = [sys.executable, "manage.py", "relay_outbox"]
    return Process("relay", command, dict(os.environ), work_dir / "relay.log").start()


# --- The peer -------------------------------------------------------------------


def peer_dir() -> Path | None:
    configured = os.environ.get("PEER_DIR")
    path = (
        Path(configured)
        if configured
        else REPO.parent / "shared" / "peers" / "fastapi_seed"
    )
    if (path / "app.py").exists() and (path / "requirements.txt").exists():
        return path.resolve()
    return None


def peer_venv(directory: Path) -> Path:
    """A virtualenv built from the peer's requirements, cached by their hash."""
    requirements = directory / "requirements.txt"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    venv = PEER_VENVS / f"peer-venv-{digest}"
    marker = venv / ".installed"
    if not marker.exists():
        logger.info("building the peer's virtualenv in %s", venv)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
                str(requirements),
            ],
            check=True,
        )
        marker.write_text(requirements.read_text())
    return venv


def sqlalchemy_url(database_url: str) -> str:
    """The peer speaks SQLAlchemy: postgres://… becomes postgresql+psycopg://…"""
    scheme, _, rest = database_url.partition("://")
    if scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise RuntimeError(f"the peer needs PostgreSQL, DATABASE_URL is {scheme}://")
    return f"postgresql+psycopg://{rest}"


def start_peer(directory: Path, work_dir: Path, *, with_kafka: bool) -> HttpServer:
    venv = peer_venv(directory)
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "KAFKA_BROKER")
        and not key.startswith("DJANGO")
    }
    env["DATABASE_URL"] = sqlalchemy_url(os.environ["DATABASE_URL"])
    env["REDIS_URL"] = os.environ["REDIS_URL"]
    if with_kafka:
        env["KAFKA_BROKER"] = os.environ["KAFKA_BROKER"]
    command = [
        str(venv / "bin" / "uvicorn"),
        "app:app",
        "--app-dir",
        str(directory),
        "--workers",
        str(PEER_WORKERS),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # ccweb's gunicorn writes no access log either.
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    name = "peer+kafka" if with_kafka else "peer"
    log = work_dir / f"{name.replace('+', '-')}.log"
    return HttpServer(name, command, env, log, port).start().wait_ready()
