"""Fixtures of the drills: the database they use, the processes, the outages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.drills.harness import (
    REPO,
    SUMMARIES,
    Account,
    Process,
    Scale,
    Web,
    current_scale,
    manage,
    production_env,
    relay_process,
    sign_up,
)

SERVICE_URLS = {
    "postgres": "DATABASE_URL",
    "redis": "REDIS_URL",
    "kafka": "KAFKA_BROKER",
}


def pytest_terminal_summary(terminalreporter) -> None:
    if not SUMMARIES:
        return
    terminalreporter.section("drill results")
    for summary in SUMMARIES:
        terminalreporter.write_line(json.dumps(summary, default=str))


@pytest.fixture(scope="session")
def scale() -> Scale:
    return current_scale()


@pytest.fixture(scope="session")
def migrated() -> dict[str, str]:
    """The database of DATABASE_URL, migrated as `docker/entrypoint.sh` does."""
    env = production_env()
    manage(env, "migrate", "--no-input")
    return env


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("drill")


# Processes and outages last for a module: a drill module runs its scenario
# once in a module fixture, and its tests each assert one property of it.


@pytest.fixture(scope="module")
def start_web(migrated, work_dir) -> Iterator[Callable[..., Web]]:
    """Start ccweb under gunicorn: `start_web(env)` with `production_env()`."""
    started: list[Web] = []

    def start(env: dict[str, str] | None = None) -> Web:
        web = Web(env or production_env(), work_dir)
        started.append(web)
        return web.start().wait_ready()

    yield start
    for web in started:
        web.stop()
        # Shown by pytest only when the drill fails.
        print(f"--- {web.log.name} ---\n{web.tail()}")


@pytest.fixture(scope="module")
def start_relay(migrated, work_dir) -> Iterator[Callable[[dict[str, str]], Process]]:
    started: list[Process] = []

    def start(env: dict[str, str]) -> Process:
        relay = relay_process(env, work_dir)
        started.append(relay)
        return relay.start()

    yield start
    for relay in started:
        relay.stop()
        print(f"--- {relay.log.name} ---\n{relay.tail()}")


@pytest.fixture(scope="module")
def web(start_web) -> Web:
    return start_web()


@pytest.fixture(scope="module")
def account(web) -> Account:
    return sign_up(web.url)


class Outage:
    """Stops a server `scripts/test.sh` started, and always starts it again.

    It does what the `servers` fixture of tests/conftest.py does, for a
    whole module, and first checks that the server it is about to stop is
    the one the drill talks to.
    """

    def __init__(self, state_dir: str | None):
        self.state_dir = state_dir
        self.down: set[str] = set()

    def _check_ours(self, name: str) -> None:
        # Stopping a server nobody started here would leave it up and make
        # the drill lie; say so instead.
        info_file = Path(self.state_dir or ".") / f"{name}.json"
        url = json.loads(info_file.read_text()).get("url") if info_file.exists() else ""
        if not self.state_dir or url != os.environ.get(SERVICE_URLS[name]):
            pytest.fail(
                f"this drill stops {name}, so it needs the {name} that "
                f"`scripts/test.sh` started ({SERVICE_URLS[name]} points elsewhere)"
            )

    def _services(self, command: str, name: str) -> None:
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "services.py"),
                command,
                name,
                "--dir",
                str(self.state_dir),
            ],
            check=True,
        )

    def stop(self, name: str) -> None:
        self._check_ours(name)
        self.down.add(name)
        self._services("stop", name)

    def start(self, name: str) -> None:
        self._services("start", name)
        self.down.discard(name)
        if name == "postgres":
            # The pytest process's own connections died with the server.
            from django.db import connections

            connections.close_all()

    def restore(self) -> None:
        for name in sorted(self.down):
            self.start(name)


@pytest.fixture(scope="module")
def outage() -> Iterator[Outage]:
    cut = Outage(os.environ.get("CCWEB_SERVICES_DIR"))
    yield cut
    cut.restore()
