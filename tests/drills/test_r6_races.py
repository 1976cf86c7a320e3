"""R6: races, over HTTP against gunicorn's worker processes.

The feature tests already race threads through Django's test client in one
process (tests/accounts/test_invite_redemption.py,
tests/actions/test_actions_concurrency.py, tests/segments/
test_rfm_single_flight.py). These drills add what only separate processes
show: the requests land on different gunicorn workers, and the two RFM
runs are two `manage.py compute_rfm` processes, as operators would start
them.

- 50 simultaneous signups with a 10-use invite code: exactly 10 accounts;
- 20 simultaneous posts of one `event_id`: one 201, nineteen 200, one row
  and one message on the topic;
- two RFM runs at once: one succeeds, one skips. The first run is held in
  the middle of its batch by a row lock the drill takes on one segment
  row, so the second surely starts while the first holds the batch lock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests

from tests.drills.harness import (
    PASSWORD,
    REPO,
    action_body,
    manage,
    query,
    read_topic,
    report,
    sign_up,
    unique_name,
    wait_for_topic,
)

pytestmark = pytest.mark.drill

SIGNUPS = 50
INVITE_USES = 10
RESENDS = 20
# Signups hash a password each: the last of 50 waits for the others.
SIGNUP_TIMEOUT_SECONDS = 120
LOCK_WAIT_SECONDS = 60


def race(count: int, call) -> list:
    """Run `call()` in `count` threads released at the same instant."""
    start = threading.Barrier(count)

    def run(_):
        start.wait()
        return call()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


# --- Invite code ------------------------------------------------------------------


@pytest.fixture(scope="module")
def signups(web, migrated) -> dict:
    code = unique_name("R6")[:32]
    manage(
        migrated,
        "shell",
        "-c",
        "from ccweb.accounts.models import InviteCode; "
        f"InviteCode.objects.create(code={code!r}, max_uses={INVITE_USES})",
    )

    def sign_up_with_code():
        response = requests.post(
            f"{web.url}/api/auth/signup",
            json={
                "username": unique_name("racer"),
                "password": PASSWORD,
                "invite_code": code,
            },
            timeout=SIGNUP_TIMEOUT_SECONDS,
        )
        return response.status_code

    statuses = Counter(race(SIGNUPS, sign_up_with_code))

    ((use_count, accounts),) = query(
        "SELECT c.use_count, count(u.id) FROM invite_codes c "
        "LEFT JOIN accounts_user u ON u.invite_code_id = c.id "
        "WHERE c.code = %s GROUP BY c.use_count",
        [code],
    )
    outcome = {"statuses": dict(statuses), "use_count": use_count, "accounts": accounts}
    report(
        "R6 invite code race",
        statuses == {201: INVITE_USES, 400: SIGNUPS - INVITE_USES}
        and use_count == accounts == INVITE_USES,
        signups=SIGNUPS,
        max_uses=INVITE_USES,
        **outcome,
    )
    return outcome


def test_it_lets_exactly_max_uses_signups_through(signups):
    assert signups["statuses"] == {201: INVITE_USES, 400: SIGNUPS - INVITE_USES}


def test_it_counts_exactly_the_accounts_created(signups):
    assert (signups["use_count"], signups["accounts"]) == (INVITE_USES, INVITE_USES)


# --- One event id, twenty times ----------------------------------------------------


@pytest.fixture(scope="module")
def resends(web) -> dict:
    account = sign_up(web.url)
    event_id = str(uuid.uuid4())
    body = action_body(event_id)

    def post():
        return (
            account.session()
            .post(f"{web.url}/api/actions", json=body, timeout=60)
            .status_code
        )

    statuses = Counter(race(RESENDS, post))

    ((rows,),) = query(
        "SELECT count(*) FROM user_actions WHERE event_id = %s", [event_id]
    )
    topic = web.env["KAFKA_TOPIC_USER_ACTIONS"]
    wait_for_topic(topic, {event_id}, timeout=60)
    messages = read_topic(topic).count(event_id)
    outcome = {"statuses": dict(statuses), "rows": rows, "messages": messages}
    report(
        "R6 one event_id posted 20 times at once",
        statuses == {201: 1, 200: RESENDS - 1} and rows == 1 and messages == 1,
        **outcome,
    )
    return outcome


def test_it_answers_one_201_and_nineteen_200(resends):
    assert resends["statuses"] == {201: 1, 200: RESENDS - 1}


def test_it_stores_one_row(resends):
    assert resends["rows"] == 1


def test_it_publishes_one_message(resends):
    assert resends["messages"] == 1


# --- Two RFM runs ------------------------------------------------------------------


def compute_rfm(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "compute_rfm", "--json"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def status_of(process: subprocess.Popen) -> str:
    stdout, stderr = process.communicate(timeout=300)
    if process.returncode != 0:
        return f"exit {process.returncode}: {stderr[-500:]}"
    return json.loads(stdout.strip().splitlines()[-1])["status"]


def wait_for_batch_lock(session: psycopg.Connection, first: subprocess.Popen) -> bool:
    from segments.rfm import ADVISORY_LOCK_KEY

    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while time.monotonic() < deadline and first.poll() is None:
        held = session.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            [ADVISORY_LOCK_KEY],
        ).fetchone()[0]
        if held:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def rfm_runs(web, account, migrated) -> dict:
    assert (
        account.session()
        .post(f"{web.url}/api/actions", json=action_body(str(uuid.uuid4())), timeout=30)
        .ok
    )
    # A first, unhurried run gives every user a segment row to hold.
    manage(migrated, "compute_rfm")

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as session:
        with session.transaction():
            session.execute(
                "SELECT 1 FROM user_segments WHERE user_id = %s FOR UPDATE",
                [account.user_id],
            )
            first = compute_rfm(migrated)
            held = wait_for_batch_lock(session, first)
            second = status_of(compute_rfm(migrated))
        first_status = status_of(first)

    outcome = {"lock_held_by_first": held, "first": first_status, "second": second}
    report(
        "R6 two RFM runs at once",
        (first_status, second) == ("succeeded", "skipped"),
        **outcome,
    )
    return outcome


def test_it_holds_the_first_run_in_the_middle_of_its_batch(rfm_runs):
    assert rfm_runs["lock_held_by_first"]


def test_it_runs_one_of_two_simultaneous_runs_and_skips_the_other(rfm_runs):
    assert (rfm_runs["first"], rfm_runs["second"]) == ("succeeded", "skipped")
