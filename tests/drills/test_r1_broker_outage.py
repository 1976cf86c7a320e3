"""R1: actions keep coming while the Kafka broker is stopped and started again.

A few client threads post actions (JWT, one user each) at a steady pace
to gunicorn while the outbox relay runs beside it. A quarter of the way in,
the broker is stopped for the outage of the scale (20 s full, 5 s small),
then started again. Every request must be answered 201, and once the relay
has drained the outbox every event id must be on the topic; duplicates are
counted (delivery is at least once) and reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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

# The load is paced to last this many outages, so the outage sits inside it.
LOAD_SPAN_IN_OUTAGES = 2.5
DRAIN_TIMEOUT_SECONDS = 300


@dataclass
class Outcome:
    load: LoadResult
    answered_during_outage: int
    outage_seconds: float
    stored: set[str]
    delivery: dict[str, int]
    drained_after_s: float


@pytest.fixture(scope="module")
def outcome(start_web, start_relay, outage, scale) -> Outcome:
    env = production_env()
    web = start_web(env)
    start_relay(env)
    accounts = [sign_up(web.url) for _ in range(scale.load_threads)]
    total = scale.broker_outage_actions
    rate = total / (LOAD_SPAN_IN_OUTAGES * scale.broker_outage_seconds)
    load = ActionLoad(accounts, total, rate_per_second=rate)
    broker_down = False
    load.in_window = lambda: broker_down

    load.start()
    load.wait_for(total // 4)
    outage.stop("kafka")
    broker_down = True
    went_down = time.monotonic()
    time.sleep(scale.broker_outage_seconds)
    outage.start("kafka")
    broker_down = False
    outage_seconds = time.monotonic() - went_down
    result = load.join()
    on_topic, drained_after = wait_for_topic(
        env["KAFKA_TOPIC_USER_ACTIONS"], result.acknowledged, DRAIN_TIMEOUT_SECONDS
    )

    delivery = delivery_figures(result.acknowledged, on_topic)
    diagnosis = explain_if_missing(
        env["KAFKA_TOPIC_USER_ACTIONS"], result.acknowledged, delivery
    )
    stored = stored_event_ids(account.user_id for account in accounts)
    report(
        "R1 broker outage",
        result.statuses == {201: total}
        and delivery["missing_from_topic"] == 0
        and result.acknowledged <= stored,
        actions=total,
        outage_requested_s=scale.broker_outage_seconds,
        # From the broker's stop to its port answering again.
        outage_s=round(outage_seconds, 1),
        answered_during_outage=load.answered_in_window,
        **result.summary(),
        **delivery,
        drained_after_load_s=round(drained_after, 1),
        **diagnosis,
    )
    return Outcome(
        load=result,
        answered_during_outage=load.answered_in_window,
        outage_seconds=outage_seconds,
        stored=stored,
        delivery=delivery,
        drained_after_s=drained_after,
    )


def test_it_answers_every_request_with_201(outcome, scale):
    assert outcome.load.statuses == {201: scale.broker_outage_actions}
    assert not outcome.load.errors


def test_it_serves_while_the_broker_is_down(outcome):
    assert outcome.answered_during_outage > 0


def test_it_stores_every_acknowledged_action(outcome):
    assert outcome.load.acknowledged <= outcome.stored


def test_it_delivers_every_event_to_the_topic(outcome):
    assert outcome.delivery["missing_from_topic"] == 0
