"""Shared fixtures: personas, authenticated clients and the real servers.

The suite runs against real PostgreSQL, Redis and Kafka (see
`scripts/test.sh`). A missing server fails the run at once with a line
saying how to start one; nothing is skipped for lack of a server.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent
HOW_TO_START = (
    "run the suite with `make test`, which starts PostgreSQL, Redis and Kafka, "
    "or point DATABASE_URL, REDIS_URL and KAFKA_BROKER at running servers"
)


def pytest_configure(config):
    missing = [
        name
        for name in ("DATABASE_URL", "REDIS_URL", "KAFKA_BROKER")
        if not os.environ.get(name)
    ]
    if missing:
        pytest.exit(f"{', '.join(missing)} not set: {HOW_TO_START}", returncode=2)


@pytest.fixture(scope="session", autouse=True)
def _servers_answer(django_db_blocker):
    """Fail the whole run early, and clearly, when a server does not answer."""
    import redis
    from confluent_kafka.admin import AdminClient
    from django.db import connection

    problems = []
    with django_db_blocker.unblock():
        try:
            connection.ensure_connection()
        except Exception as exc:
            problems.append(f"PostgreSQL at DATABASE_URL: {exc}")
    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2).ping()
    except Exception as exc:
        problems.append(f"Redis at REDIS_URL: {exc}")
    metadata = AdminClient({"bootstrap.servers": settings.KAFKA_BROKER}).list_topics(
        timeout=10
    )
    if not metadata.brokers:
        problems.append(f"Kafka at KAFKA_BROKER={settings.KAFKA_BROKER}: no broker")
    if problems:
        pytest.exit("; ".join(problems) + f" — {HOW_TO_START}", returncode=2)


# --- Servers -----------------------------------------------------------------


class Servers:
    """Stops and starts the servers that `scripts/test.sh` started (drills)."""

    def __init__(self, state_dir: str | None):
        self.state_dir = state_dir

    def _run(self, command: str, name: str) -> None:
        if not self.state_dir:
            pytest.fail(
                f"this test stops and starts {name}, so it needs the servers that "
                "`make test` starts itself (CCWEB_SERVICES_DIR is not set)"
            )
        subprocess.run(
            [
                sys.executable,
                str(REPO / "scripts" / "services.py"),
                command,
                name,
                "--dir",
                self.state_dir,
            ],
            check=True,
        )

    def stop(self, name: str) -> None:
        self._run("stop", name)

    def start(self, name: str) -> None:
        self._run("start", name)


@pytest.fixture
def servers():
    return Servers(os.environ.get("CCWEB_SERVICES_DIR"))


@pytest.fixture
def redis_client():
    """A raw client on the test Redis, emptied before the test."""
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def kafka_topic():
    """The topic this run publishes user actions to."""
    return settings.KAFKA_TOPIC_USER_ACTIONS


@pytest.fixture
def kafka_consumer(kafka_topic):
    """A consumer on the actions topic that reads from the beginning."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BROKER,
            "group.id": f"test-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([kafka_topic])
    yield consumer
    consumer.close()


# --- Personas and clients -----------------------------------------------------


@pytest.fixture
def make_user(db):
    from django.contrib.auth import get_user_model

    def make(username: str, **extra):
        user_model = get_user_model()
        return user_model.objects.create_user(
            username=username, password="correct-horse-battery-9", **extra
        )

    return make


@pytest.fixture
def alice(make_user):
    return make_user("alice", nickname="Alice")


@pytest.fixture
def bob(make_user):
    return make_user("bob", nickname="Bob")


@pytest.fixture
def staff(make_user):
    return make_user("operator", is_staff=True)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


def client_for(user):
    """An API client carrying a fresh JWT access token for `user`."""
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    client = APIClient()
    token = RefreshToken.for_user(user).access_token
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def alice_client(alice):
    return client_for(alice)


@pytest.fixture
def bob_client(bob):
    return client_for(bob)


@pytest.fixture
def staff_client(staff):
    return client_for(staff)


@pytest.fixture
def run_concurrently():
    """Run the calls in threads released together; return their results.

    Each thread has its own database connection and closes it at the end,
    so PostgreSQL sees truly concurrent transactions.
    """
    from django.db import connections

    def run(calls: list[Callable[[], object]]) -> list[object]:
        start = threading.Barrier(len(calls))

        def worker(call: Callable[[], object]) -> object:
            try:
                start.wait(timeout=30)
                return call()
            finally:
                connections.close_all()

        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = [pool.submit(worker, call) for call in calls]
            return [future.result(timeout=120) for future in futures]

    return run
