"""Helpers shared by the tests: user-scoped endpoints, child processes,
side sessions on the test database."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
from django.db import connection
from rest_framework.test import APIClient

REPO = Path(__file__).resolve().parent.parent


def side_session() -> psycopg.Connection:
    """A second PostgreSQL session on the test database, outside Django."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    return psycopg.connect(**params, autocommit=True)


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`manage.py *args` in a child process with exactly `env`, output captured."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_user_scoped(
    *,
    method: str,
    path_for,
    owner,
    other,
    owner_client: APIClient,
    staff_client: APIClient | None = None,
    body_for=None,
    ok_statuses=(200, 201),
):
    """Check the access rules on one endpoint, IDOR included.

    `path_for(user)` and `body_for(user)` build the request that targets
    `user`. The owner succeeds, anonymous gets 401, the owner aiming at
    `other` gets 403, and staff (when given) may target `other`.
    """

    def call(client, target):
        path = path_for(target)
        body = body_for(target) if body_for else None
        return getattr(client, method.lower())(path, body, format="json")

    anonymous = call(APIClient(), owner)
    assert anonymous.status_code == 401, anonymous.content

    foreign = call(owner_client, other)
    assert foreign.status_code == 403, foreign.content

    own = call(owner_client, owner)
    assert own.status_code in ok_statuses, own.content

    if staff_client is not None:
        on_behalf = call(staff_client, other)
        assert on_behalf.status_code in ok_statuses, on_behalf.content
