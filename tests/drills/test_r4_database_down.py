"""R4: PostgreSQL stopped under a running gunicorn.

Every API operation of the served schema, and /health/ready, must answer
503 with a JSON body within 2 s on every worker while /health stays 200;
when PostgreSQL is back the same gunicorn serves again by itself.

Connections are kept between requests without a health check
(DB_CONN_HEALTH_CHECKS is off by default, see ccweb/settings.py), so after
the restart each connection that was open before the outage fails its
next request once (503, JSON) and is then replaced. The drill counts those
503s and checks that there are no more of them than connections that were
open when the database went down.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.drills.harness import Account, query, report
from tests.drills.operations import (
    Call,
    schema_operations,
    unknown_operations,
    valid_call,
)

pytestmark = pytest.mark.drill

DEADLINE_SECONDS = 2.0
# Sequential calls land on gunicorn's workers in turn; a few per operation
# reach more than one of them, each with its own dead connection.
CALLS_PER_OPERATION = 3
WARM_UP_CALLS = 12
RECOVERY_TIMEOUT_SECONDS = 30
# Recovered: this many answers in a row are 200.
STEADY_ANSWERS = 40


@dataclass
class Answer:
    operation: str
    status: int
    content_type: str
    json_body: bool
    seconds: float

    def __str__(self) -> str:
        return (
            f"{self.operation}: {self.status} {self.content_type or '-'} "
            f"in {self.seconds:.2f}s"
        )


@dataclass
class Outcome:
    operations: list[str]
    unknown: list[str]
    answers: list[Answer] = field(default_factory=list)
    liveness_status: int = 0
    connections_at_outage: int = 0
    recovered_after: float | None = None
    statuses_after: Counter = field(default_factory=Counter)

    @property
    def wrong(self) -> list[str]:
        return [
            str(answer)
            for answer in self.answers
            if answer.status != 503
            or not answer.json_body
            or answer.seconds > DEADLINE_SECONDS
        ]


def ask(call: Call, base_url: str, token: str) -> Answer:
    started = time.monotonic()
    response = call.send(base_url, token, timeout=10)
    seconds = time.monotonic() - started
    try:
        response.json()
        json_body = True
    except ValueError:
        json_body = False
    return Answer(
        operation=f"{call.method} {call.template}",
        status=response.status_code,
        content_type=response.headers.get("Content-Type", ""),
        json_body=json_body,
        seconds=seconds,
    )


def calls_during_outage(operations, account: Account) -> list[Call]:
    calls = [Call("GET", "/health/ready")] * CALLS_PER_OPERATION
    for operation in operations:
        calls += [
            valid_call(operation, account, account.user_id)
            for _ in range(CALLS_PER_OPERATION)
        ]
    return calls


def open_connections() -> int:
    """Connections to the drill's database, other than this query's own."""
    ((count,),) = query(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    return count


def wait_for_recovery(web, account: Account) -> tuple[float | None, Counter]:
    """Seconds until STEADY_ANSWERS 200s in a row, and every status seen."""
    me = Call("GET", "/api/auth/me")
    statuses: Counter = Counter()
    in_a_row = 0
    started = time.monotonic()
    while time.monotonic() - started < RECOVERY_TIMEOUT_SECONDS:
        status = me.send(web.url, account.access, timeout=5).status_code
        statuses[status] += 1
        in_a_row = in_a_row + 1 if status == 200 else 0
        if in_a_row == STEADY_ANSWERS:
            return time.monotonic() - started, statuses
        if status != 200:
            time.sleep(0.05)
    return None, statuses


@pytest.fixture(scope="module")
def outcome(web, account, outage) -> Outcome:
    operations = schema_operations(web.url)
    result = Outcome(
        operations=[" ".join(operation) for operation in operations],
        unknown=unknown_operations(operations, account),
    )
    me = Call("GET", "/api/auth/me")
    for _ in range(WARM_UP_CALLS):
        # Every worker now holds a database connection that is about to die.
        me.send(web.url, account.access)

    result.connections_at_outage = open_connections()
    outage.stop("postgres")
    result.answers = [
        ask(call, web.url, account.access)
        for call in calls_during_outage(operations, account)
    ]
    result.liveness_status = Call("GET", "/health").send(web.url).status_code
    outage.start("postgres")
    result.recovered_after, result.statuses_after = wait_for_recovery(web, account)

    report(
        "R4 database down",
        not result.wrong
        and not result.unknown
        and result.liveness_status == 200
        and result.recovered_after is not None
        and set(result.statuses_after) <= {200, 503}
        and result.statuses_after[503] <= result.connections_at_outage,
        operations=len(operations) + 1,
        requests=len(result.answers),
        not_503_json_within_2s=len(result.wrong),
        slowest_s=round(max(answer.seconds for answer in result.answers), 3),
        health_status=result.liveness_status,
        steady_after_s=result.recovered_after and round(result.recovered_after, 2),
        connections_at_outage=result.connections_at_outage,
        statuses_after_return=dict(result.statuses_after),
    )
    return result


def test_it_knows_how_to_call_every_operation_of_the_schema(outcome):
    assert outcome.unknown == [], "add them to tests/drills/operations.py"


def test_it_answers_503_json_within_2_seconds_on_every_operation(outcome):
    assert outcome.wrong == []


def test_it_keeps_liveness_up(outcome):
    assert outcome.liveness_status == 200


def test_it_recovers_without_a_restart(outcome):
    assert outcome.recovered_after is not None


def test_it_fails_each_stale_connection_once_at_most(outcome):
    assert set(outcome.statuses_after) <= {200, 503}
    assert outcome.statuses_after[503] <= outcome.connections_at_outage
