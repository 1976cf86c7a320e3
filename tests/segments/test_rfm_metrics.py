"""The RFM metrics on /metrics, read from the run history at scrape time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from segments.models import RfmRun
from segments.rfm import compute_rfm_and_update_segments
from tests.segments.rfm_helpers import AS_OF, history, player

pytestmark = pytest.mark.django_db


def scrape() -> dict[tuple[str, tuple], float]:
    page = Client().get("/metrics").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name.startswith("ccweb_rfm_")
    }


def test_it_reports_users_per_group_of_the_latest_run():
    history(player("whale"), recency_days=0, frequency=30, monetary="20000")
    player("idle")
    compute_rfm_and_update_segments(AS_OF - timedelta(days=1))
    compute_rfm_and_update_segments(AS_OF)

    samples = scrape()

    assert samples[("ccweb_rfm_users", (("group", "Whale"),))] == 1
    assert samples[("ccweb_rfm_users", (("group", "Low"),))] == 1


def test_it_reports_run_durations_as_a_histogram():
    compute_rfm_and_update_segments(AS_OF)
    compute_rfm_and_update_segments(AS_OF)

    samples = scrape()

    assert samples[("ccweb_rfm_run_seconds_count", (("status", "succeeded"),))] == 2
    assert samples[("ccweb_rfm_run_seconds_count", (("status", "failed"),))] == 0


def test_it_reports_when_the_last_run_succeeded():
    summary = compute_rfm_and_update_segments(AS_OF)

    samples = scrape()

    run = RfmRun.objects.get(pk=summary.run_id)
    reported = samples[("ccweb_rfm_last_success_timestamp_seconds", ())]
    assert reported == pytest.approx(run.finished_at.timestamp())
