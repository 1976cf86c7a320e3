"""R2: a gunicorn worker, or the outbox relay, killed with SIGKILL mid-load.

Whatever was committed must reach the topic once the relay has drained the
outbox: the event ids of `user_actions` for the drill's users must all be
on the topic. Requests cut off by a dying worker are sent again with the
same `event_id`, as a client would.

- Worker: the web process publishes on its fast path and the relay runs
  beside it; two workers are killed while actions pour in. Rows a dead
  worker had leased come back to the relay when the lease ends.
- Relay: the web process only writes the outbox (no broker configured, so
  the relay is the only publisher); the relay starts on a backlog and is
  killed the moment it holds claimed rows, i.e. in the middle of a batch,
  then a new relay is started. "Claimed" covers both ways a relay may hold
  rows: locked by its open transaction (FOR UPDATE), or leased
  (`available_at` pushed into the future).

The outbox lease is shortened to its minimum (OUTBOX_LEASE_SECONDS=16, the
message timeout plus 5 s and a little) so the drills do not wait 30 s for
the leases of the dead processes.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import psycopg
import pytest

from tests.drills.harness import (
    ActionLoad,
    LoadResult,
    delivery_figures,
    explain_if_missing,
    production_env,
    report,
    sign_up,
    stored_event_ids,
    wait_for_topic,
)

pytestmark = pytest.mark.drill

LEASE_SECONDS = "16"
DRAIN_TIMEOUT_SECONDS = 180
WORKER_KILLS = 2
CLAIM_POLL_SECONDS = 0.002
CLAIM_WAIT_SECONDS = 60


@dataclass
class Outcome:
    load: LoadResult
    committed: set[str]
    delivery: dict[str, int]
    kills: int
    at_risk_at_kill: int


# Rows of a topic that somebody holds: leased, or locked by an open
# transaction (SKIP LOCKED passes over those; the probe's own locks last
# one statement).
CLAIMED = """
SELECT
    (SELECT count(*) FROM actions_outbox
     WHERE topic = %(topic)s AND available_at > now())
  + (SELECT count(*) FROM actions_outbox WHERE topic = %(topic)s)
  - (SELECT count(*) FROM (
        SELECT id FROM actions_outbox WHERE topic = %(topic)s
        FOR UPDATE SKIP LOCKED
     ) AS free)
"""


def wait_for_claimed_rows(conn: psycopg.Connection, topic: str) -> int:
    """How many rows of `topic` are claimed, as soon as any is (0: time is up)."""
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while time.monotonic() < deadline:
        (claimed,) = conn.execute(CLAIMED, {"topic": topic}).fetchone()
        if claimed:
            return claimed
        time.sleep(CLAIM_POLL_SECONDS)
    return 0


@pytest.fixture(scope="module")
def worker_kill(start_web, start_relay, scale) -> Outcome:
    env = production_env(OUTBOX_LEASE_SECONDS=LEASE_SECONDS)
    web = start_web(env)
    relay = start_relay(env)
    accounts = [sign_up(web.url) for _ in range(scale.load_threads)]
    total = scale.kill_actions
    # Unpaced, so requests are in flight whenever a worker is killed.
    load = ActionLoad(accounts, total)
    killed = []

    load.start()
    for kill in range(1, WORKER_KILLS + 1):
        load.wait_for(total * kill // (WORKER_KILLS + 1))
        victim = web.worker_pids()[0]
        web.kill_worker(victim)
        killed.append(victim)
    result = load.join()
    committed = stored_event_ids(account.user_id for account in accounts)
    on_topic, drained_after = wait_for_topic(
        env["KAFKA_TOPIC_USER_ACTIONS"], committed, DRAIN_TIMEOUT_SECONDS
    )
    # A relay left running would drain the next drill's backlog.
    relay.stop()

    delivery = delivery_figures(committed, on_topic)
    diagnosis = explain_if_missing(env["KAFKA_TOPIC_USER_ACTIONS"], committed, delivery)
    report(
        "R2 SIGKILL web worker",
        delivery["missing_from_topic"] == 0 and result.acknowledged <= committed,
        actions=total,
        workers_killed=len(killed),
        committed=len(committed),
        acknowledged=len(result.acknowledged),
        **result.summary(),
        **delivery,
        drained_after_load_s=round(drained_after, 1),
        **diagnosis,
    )
    return Outcome(result, committed, delivery, len(killed), at_risk_at_kill=0)


@pytest.fixture(scope="module")
def relay_kill(start_web, start_relay, scale) -> Outcome:
    env = production_env(OUTBOX_LEASE_SECONDS=LEASE_SECONDS)
    topic = env["KAFKA_TOPIC_USER_ACTIONS"]
    # No broker for the web process: every event waits for the relay.
    web = start_web({**env, "KAFKA_BROKER": "", "KAFKA_BOOTSTRAP_SERVERS": ""})
    accounts = [sign_up(web.url) for _ in range(scale.load_threads)]
    result = ActionLoad(accounts, scale.kill_actions).start().join()
    committed = stored_event_ids(account.user_id for account in accounts)

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        relay = start_relay(env)
        at_risk = wait_for_claimed_rows(conn, topic)
        relay.kill()
    start_relay(env)
    on_topic, drained_after = wait_for_topic(topic, committed, DRAIN_TIMEOUT_SECONDS)

    delivery = delivery_figures(committed, on_topic)
    diagnosis = explain_if_missing(topic, committed, delivery)
    report(
        "R2 SIGKILL relay",
        delivery["missing_from_topic"] == 0 and result.acknowledged <= committed,
        actions=scale.kill_actions,
        committed=len(committed),
        claimed_rows_when_killed=at_risk,
        **delivery,
        drained_after_restart_s=round(drained_after, 1),
        **diagnosis,
    )
    return Outcome(result, committed, delivery, kills=1, at_risk_at_kill=at_risk)


def test_it_loses_no_committed_action_when_a_worker_dies(worker_kill):
    assert worker_kill.delivery["missing_from_topic"] == 0


def test_it_stores_every_action_it_acknowledged_before_a_worker_died(worker_kill):
    assert worker_kill.load.acknowledged <= worker_kill.committed


def test_it_answers_every_request_despite_dead_workers(worker_kill):
    assert set(worker_kill.load.statuses) <= {200, 201}
    assert not worker_kill.load.errors


def test_it_kills_the_relay_in_the_middle_of_a_batch(relay_kill):
    assert relay_kill.at_risk_at_kill > 0


def test_it_loses_no_committed_action_when_the_relay_dies(relay_kill):
    assert relay_kill.delivery["missing_from_topic"] == 0
