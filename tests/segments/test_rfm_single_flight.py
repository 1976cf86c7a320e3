"""Two RFM runs at once on PostgreSQL: one runs, the other skips (R6)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import psycopg
import pytest
from django.db import DataError, connections

from segments.models import RfmRun, UserSegment
from segments.rfm import ADVISORY_LOCK_KEY, compute_rfm_and_update_segments
from tests.helpers import side_session
from tests.segments.rfm_helpers import AS_OF, act

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for_batch_lock(session: psycopg.Connection, timeout: float = 20) -> None:
    """Until some session holds the batch's advisory lock."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        held = session.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND ((classid::bigint << 32) | objid::bigint) = %s",
            [ADVISORY_LOCK_KEY],
        ).fetchone()[0]
        if held:
            return
        time.sleep(0.05)
    pytest.fail("the first run never took the batch lock")


def run_in_thread(results: list, name: str) -> None:
    try:
        results.append((name, compute_rfm_and_update_segments(AS_OF).status))
    finally:
        connections.close_all()


def test_it_skips_while_another_session_holds_the_lock(alice):
    act(alice, AS_OF - timedelta(days=1))

    with side_session() as other, other.transaction():
        other.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        summary = compute_rfm_and_update_segments(AS_OF)

    assert summary.status == "skipped"
    assert not UserSegment.objects.exists()


def test_it_runs_one_of_two_simultaneous_runs_and_skips_the_other(alice):
    act(alice, AS_OF - timedelta(days=1))
    UserSegment.objects.create(user=alice)
    results: list[tuple[str, str]] = []

    with side_session() as blocker:
        # Hold alice's segment row so the first run stops mid-statement,
        # lock in hand, for as long as the second one needs to start.
        with blocker.transaction():
            blocker.execute(
                "SELECT 1 FROM user_segments WHERE user_id = %s FOR UPDATE",
                [alice.pk],
            )
            first = threading.Thread(target=run_in_thread, args=(results, "first"))
            first.start()
            wait_for_batch_lock(blocker)
            run_in_thread(results, "second")
        first.join(timeout=60)

    assert sorted(results) == [("first", "succeeded"), ("second", "skipped")]
    statuses = sorted(RfmRun.objects.values_list("status", flat=True))
    assert statuses == ["skipped", "succeeded"]


def test_it_releases_the_lock_when_a_run_fails(alice, settings):
    act(alice, AS_OF - timedelta(days=1))
    settings.RFM_RULES = [("X" * 40, 30, 1, 0.0)]
    with pytest.raises(DataError):
        compute_rfm_and_update_segments(AS_OF)
    settings.RFM_RULES = [("Whale", 30, 1, 0.0)]

    summary = compute_rfm_and_update_segments(AS_OF)

    assert summary.status == "succeeded"
