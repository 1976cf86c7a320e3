"""The RFM batch on PostgreSQL: window, recency, scores, groups, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import DataError

from segments.models import RfmRun, UserSegment
from segments.rfm import compute_rfm_and_update_segments
from tests.segments.rfm_helpers import AS_OF, act, history, player, segment_of

pytestmark = pytest.mark.django_db

WINDOW = timedelta(days=30)


@pytest.mark.parametrize(
    ("moment", "counted"),
    [
        (AS_OF - WINDOW, True),
        (AS_OF - WINDOW - timedelta(microseconds=1), False),
        (AS_OF, True),
        (AS_OF + timedelta(seconds=1), False),
    ],
    ids=["exactly-window-days-ago", "just-before-window", "at-as-of", "after-as-of"],
)
def test_it_counts_actions_inside_the_closed_window_only(alice, moment, counted):
    act(alice, moment, "5")

    compute_rfm_and_update_segments(AS_OF)

    assert (segment_of(alice).frequency == 1) is counted


@pytest.mark.parametrize(
    ("as_of", "last_action", "recency"),
    [
        (
            datetime(2026, 3, 10, 0, 0, tzinfo=UTC),
            datetime(2026, 3, 9, 23, 59, 59, 999_999, tzinfo=UTC),
            1,
        ),
        (
            datetime(2026, 3, 10, 23, 59, 59, tzinfo=UTC),
            datetime(2026, 3, 10, 0, 0, tzinfo=UTC),
            0,
        ),
        (
            datetime(2026, 3, 10, 0, 0, tzinfo=UTC),
            datetime(2026, 2, 8, 0, 0, tzinfo=UTC),
            30,
        ),
    ],
    ids=["a-microsecond-before-midnight", "same-utc-day", "whole-window"],
)
def test_it_counts_recency_in_utc_calendar_days(alice, as_of, last_action, recency):
    act(alice, last_action)

    compute_rfm_and_update_segments(as_of)

    assert segment_of(alice).recency_days == recency


def test_it_stores_frequency_and_monetary(alice):
    for value in ("10.25", "0", "4.75"):
        act(alice, AS_OF - timedelta(days=3), value)

    compute_rfm_and_update_segments(AS_OF)

    segment = segment_of(alice)
    assert (segment.frequency, segment.monetary) == (3, Decimal("15.00"))


def test_it_keeps_zero_monetary_apart_from_no_actions(alice, bob):
    act(alice, AS_OF - timedelta(days=1), "0")

    compute_rfm_and_update_segments(AS_OF)

    assert segment_of(alice).monetary == Decimal("0.00")
    assert segment_of(bob).monetary is None


def test_it_makes_users_without_actions_low_with_empty_values(alice):
    act(alice, AS_OF - WINDOW - timedelta(days=1), "50000")

    compute_rfm_and_update_segments(AS_OF)

    segment = segment_of(alice)
    assert segment.rfm_group == "Low"
    assert [
        segment.recency_days,
        segment.frequency,
        segment.monetary,
        segment.r_score,
        segment.f_score,
        segment.m_score,
    ] == [None] * 6


def test_it_gives_tied_values_the_same_score():
    frequencies = [1, 1, 1, 1, 1, 1, 2, 3, 4, 5]
    for number, frequency in enumerate(frequencies):
        user = player(f"player{number}")
        history(user, recency_days=1, frequency=frequency, monetary="0")

    compute_rfm_and_update_segments(AS_OF)

    scores = set(UserSegment.objects.values_list("frequency", "f_score"))
    assert scores == {(1, 1), (2, 4), (3, 4), (4, 5), (5, 5)}


def test_it_scores_the_most_recent_users_highest():
    for days in range(5):
        history(player(f"player{days}"), recency_days=days, frequency=1, monetary="1")

    compute_rfm_and_update_segments(AS_OF)

    scores = dict(UserSegment.objects.values_list("recency_days", "r_score"))
    assert scores == {0: 5, 1: 4, 2: 3, 3: 2, 4: 1}


def test_it_scores_the_biggest_spenders_highest():
    for number, amount in enumerate(["0", "0", "10", "20", "30"]):
        history(player(f"player{number}"), recency_days=1, frequency=1, monetary=amount)

    compute_rfm_and_update_segments(AS_OF)

    scores = sorted(UserSegment.objects.values_list("monetary", "m_score"))
    assert [score for _, score in scores] == [1, 1, 3, 4, 5]


@pytest.mark.parametrize(
    ("recency", "frequency", "monetary", "group"),
    [
        (2, 30, "10000.00", "Whale"),
        (3, 30, "10000.00", "High Engaged"),
        (2, 29, "10000.00", "High Engaged"),
        (2, 30, "9999.99", "High Engaged"),
        (5, 15, "2000.00", "High Engaged"),
        (6, 15, "2000.00", "Medium"),
        (5, 14, "2000.00", "Medium"),
        (5, 15, "1999.99", "Medium"),
        (15, 5, "100.00", "Medium"),
        (16, 5, "100.00", "Low"),
        (15, 4, "100.00", "Low"),
        (15, 5, "99.99", "Low"),
    ],
)
def test_it_applies_each_rule_threshold_inclusively(
    alice, recency, frequency, monetary, group
):
    history(alice, recency_days=recency, frequency=frequency, monetary=monetary)

    compute_rfm_and_update_segments(AS_OF)

    assert segment_of(alice).rfm_group == group


def test_it_reads_the_rules_from_settings(alice, settings):
    settings.RFM_RULES = [("Whale", 30, 1, 0.0)]
    history(alice, recency_days=20, frequency=1, monetary="0")

    compute_rfm_and_update_segments(AS_OF)

    assert segment_of(alice).rfm_group == "Whale"


def test_it_honours_the_window_setting(alice, settings):
    settings.RFM_WINDOW_DAYS = 7
    act(alice, AS_OF - timedelta(days=8))

    compute_rfm_and_update_segments(AS_OF)

    assert segment_of(alice).frequency is None


def test_it_never_touches_the_risk_profile(alice):
    UserSegment.objects.create(user=alice, risk_profile="High-Risk")
    history(alice, recency_days=1, frequency=5, monetary="500")

    compute_rfm_and_update_segments(AS_OF)

    segment = segment_of(alice)
    assert (segment.risk_profile, segment.rfm_group) == ("High-Risk", "Medium")


def test_it_gives_new_rows_the_unknown_risk_profile(alice):
    compute_rfm_and_update_segments(AS_OF)

    assert segment_of(alice).risk_profile == "Unknown"


def test_it_gives_the_same_segments_when_run_again():
    for number in range(6):
        history(
            player(f"player{number}"),
            recency_days=number,
            frequency=number + 1,
            monetary=str(number * 40),
        )
    fields = ["user_id", "rfm_group", "recency_days", "frequency", "monetary"]
    fields += ["r_score", "f_score", "m_score"]

    compute_rfm_and_update_segments(AS_OF)
    first = list(UserSegment.objects.order_by("user_id").values_list(*fields))
    compute_rfm_and_update_segments(AS_OF)
    second = list(UserSegment.objects.order_by("user_id").values_list(*fields))

    assert first == second
    assert len(second) == 6


def test_it_stamps_every_row_with_the_run_moment(alice, bob):
    act(alice, AS_OF - timedelta(days=1))
    before = datetime.now(UTC)

    compute_rfm_and_update_segments(AS_OF)

    stamps = UserSegment.objects.values_list("last_updated", flat=True)
    assert len(set(stamps)) == 1
    assert min(stamps) >= before


def test_it_replays_a_past_moment_from_the_command(alice, capsys):
    act(alice, datetime(2026, 1, 30, 8, 0, tzinfo=UTC), "20")
    act(alice, datetime(2026, 2, 2, 8, 0, tzinfo=UTC), "999")

    call_command("compute_rfm", "--as-of", "2026-02-01T00:00:00Z")

    segment = segment_of(alice)
    assert (segment.recency_days, segment.frequency) == (2, 1)
    assert "succeeded as of 2026-02-01T00:00:00+00:00" in capsys.readouterr().out


def test_it_takes_a_moment_without_offset_as_utc(alice):
    act(alice, datetime(2026, 1, 31, 23, 0, tzinfo=UTC))

    call_command("compute_rfm", "--as-of", "2026-02-01")

    assert segment_of(alice).recency_days == 1


def test_it_rejects_an_unreadable_as_of():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="ISO 8601"):
        call_command("compute_rfm", "--as-of", "yesterday")


def test_it_records_the_run_with_its_counts():
    history(player("whale"), recency_days=0, frequency=30, monetary="20000")
    history(player("medium"), recency_days=10, frequency=5, monetary="100")
    player("idle")

    summary = compute_rfm_and_update_segments(AS_OF)

    run = RfmRun.objects.get(pk=summary.run_id)
    assert run.status == "succeeded"
    assert (run.users_processed, run.active_users) == (3, 2)
    assert run.group_counts == {"Whale": 1, "High Engaged": 0, "Medium": 1, "Low": 1}


def test_it_records_a_failed_run_and_leaves_segments_as_they_were(alice, settings):
    UserSegment.objects.create(user=alice, rfm_group="Medium")
    history(alice, recency_days=1, frequency=1, monetary="1")
    # A group name longer than the column makes the statement fail.
    settings.RFM_RULES = [("X" * 40, 30, 1, 0.0)]

    with pytest.raises(DataError):
        compute_rfm_and_update_segments(AS_OF)

    run = RfmRun.objects.get()
    assert (run.status, segment_of(alice).rfm_group) == ("failed", "Medium")
    assert "DataError" in run.error


def test_it_marks_runs_abandoned_by_a_dead_worker_as_failed():
    stale = RfmRun.objects.create(
        started_at=datetime.now(UTC) - timedelta(days=1),
        as_of=AS_OF,
        window_days=30,
        status="running",
    )

    compute_rfm_and_update_segments(AS_OF)

    stale.refresh_from_db()
    assert stale.status == "failed"
    assert stale.error.startswith("abandoned")


def test_it_refuses_a_naive_moment():
    with pytest.raises(ValueError, match="timezone-aware"):
        compute_rfm_and_update_segments(datetime(2026, 1, 1))
