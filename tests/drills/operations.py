"""One well-formed request for every operation of the API, for a given user.

Drills that must cover "every endpoint" (R4, R7) take the operations from
the OpenAPI schema the server serves and look each one up here; an
operation missing from this table fails the drill by name, so a new
endpoint is never skipped silently.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.drills.harness import (
    HTTP_TIMEOUT_SECONDS,
    INVITE_CODE,
    PASSWORD,
    Account,
    action_body,
    unique_name,
)

Operation = tuple[str, str]  # (method, path template), as in the schema


@dataclass
class Call:
    """A request ready to send: what the schema names, filled in for a user."""

    method: str
    template: str
    path_params: dict[str, Any] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None

    @property
    def path(self) -> str:
        return self.template.format(**self.path_params)

    def send(self, base_url: str, token: str | None = None, **kwargs: Any):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.request(
            self.method,
            f"{base_url}{self.path}",
            params=self.query,
            json=self.body,
            headers=headers,
            timeout=kwargs.pop("timeout", HTTP_TIMEOUT_SECONDS),
            **kwargs,
        )


def schema_operations(base_url: str) -> list[Operation]:
    schema = requests.get(
        f"{base_url}/api/schema",
        headers={"Accept": "application/vnd.oai.openapi+json"},
        timeout=HTTP_TIMEOUT_SECONDS,
    ).json()
    return sorted(
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    )


def valid_call(operation: Operation, account: Account, target_user_id: int) -> Call:
    """A well-formed call of `operation` by `account`, aimed at `target_user_id`.

    Raises KeyError for an operation this table does not know yet.
    """
    method, template = operation
    user = {"user_id": target_user_id}
    calls = {
        ("POST", "/api/auth/signup"): lambda: Call(
            method,
            template,
            body={
                "username": unique_name("drill"),
                "password": PASSWORD,
                "invite_code": INVITE_CODE,
            },
        ),
        ("POST", "/api/auth/token"): lambda: Call(
            method,
            template,
            body={"username": account.username, "password": account.password},
        ),
        ("POST", "/api/auth/token/refresh"): lambda: Call(
            method, template, body={"refresh": account.refresh}
        ),
        ("POST", "/api/auth/logout"): lambda: Call(
            method, template, body={"refresh": account.refresh}
        ),
        ("GET", "/api/auth/me"): lambda: Call(method, template),
        ("GET", "/api/invite/validate/{code}"): lambda: Call(
            method, template, path_params={"code": INVITE_CODE}
        ),
        ("POST", "/api/actions"): lambda: Call(
            method, template, body=action_body(str(uuid.uuid4()), **user)
        ),
        ("POST", "/api/actions/batch"): lambda: Call(
            method,
            template,
            body={
                "actions": [action_body(str(uuid.uuid4()), **user) for _ in range(3)]
            },
        ),
        ("POST", "/api/notify/site_visit"): lambda: Call(
            method, template, body={**user, "source": "drill"}
        ),
        ("GET", "/api/user-segments/{user_id}"): lambda: Call(
            method, template, path_params=user
        ),
        ("PATCH", "/api/user-segments/{user_id}"): lambda: Call(
            method, template, path_params=user, body={"risk_profile": "Low-Risk"}
        ),
        ("GET", "/api/user-segments/{user_id}/recommendation"): lambda: Call(
            method, template, path_params=user
        ),
        ("GET", "/api/user-segments/{user_id}/odds"): lambda: Call(
            method, template, path_params=user, query={"base_probability": 0.5}
        ),
    }
    return calls[operation]()


def unknown_operations(operations: list[Operation], account: Account) -> list[str]:
    """Operations of the schema this table cannot build a request for."""
    missing = []
    for operation in operations:
        try:
            valid_call(operation, account, account.user_id)
        except KeyError:
            missing.append(" ".join(operation))
    return missing
