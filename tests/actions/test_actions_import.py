"""manage.py import_actions: CSV, JSON lines and CDNOW backfills."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.utils import timezone

from actions.importer import import_cdnow, read_cdnow
from actions.models import OutboxEvent, UserAction

pytestmark = pytest.mark.django_db

CDNOW_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "cdnow_sample.txt"


def run_import(*args: str) -> str:
    out = io.StringIO()
    call_command(
        "import_actions", *args, "--no-progress", stdout=out, stderr=io.StringIO()
    )
    return out.getvalue()


@pytest.fixture
def csv_file(tmp_path, alice, bob):
    path = tmp_path / "history.csv"
    path.write_text(
        "user_id,action_type,action_timestamp,value,metadata\n"
        f"{alice.pk},spin,2021-05-01T10:00:00Z,1.50,\n"
        f'{alice.pk},purchase,2021-05-02T11:30:00+02:00,20,"{{""sku"": ""A1""}}"\n'
        f"{bob.pk},spin,2021-05-03 08:00:00,,\n"
    )
    return path


@pytest.fixture
def jsonl_file(tmp_path, alice):
    path = tmp_path / "history.jsonl"
    lines = [
        {"who": alice.pk, "at": 1620000000, "amount": 3, "kind": "bet"},
        {"who": alice.pk, "at": 1620086400, "amount": "4.25", "kind": "win"},
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    return path


def test_it_imports_a_csv_file(csv_file):
    run_import(str(csv_file))

    assert UserAction.objects.count() == 3
    assert UserAction.objects.aggregate(total=Sum("value"))["total"] == Decimal("21.50")


def test_it_reads_offsets_and_takes_naive_times_as_utc(csv_file, bob):
    run_import(str(csv_file))

    stamps = sorted(UserAction.objects.values_list("action_timestamp", flat=True))
    assert stamps[1] == datetime(2021, 5, 2, 9, 30, tzinfo=UTC)
    assert stamps[2] == datetime(2021, 5, 3, 8, 0, tzinfo=UTC)


def test_it_writes_no_outbox_rows_unless_asked(csv_file):
    run_import(str(csv_file))

    assert not OutboxEvent.objects.exists()


def test_it_queues_events_with_publish(csv_file):
    run_import(str(csv_file), "--publish")

    assert OutboxEvent.objects.count() == 3


def test_it_stores_nothing_twice_when_run_again(csv_file):
    run_import(str(csv_file))

    output = run_import(str(csv_file))

    assert UserAction.objects.count() == 3
    assert "Imported 0 new actions" in output


def test_it_maps_columns_of_a_json_lines_file(jsonl_file):
    run_import(
        str(jsonl_file),
        "--user-column=who",
        "--timestamp-column=at",
        "--timestamp-format=epoch",
        "--value-column=amount",
        "--type-column=kind",
    )

    rows = UserAction.objects.order_by("action_timestamp")
    assert [(row.action_type, row.value) for row in rows] == [
        ("bet", Decimal("3.00")),
        ("win", Decimal("4.25")),
    ]


def test_it_gives_every_row_one_fixed_type(jsonl_file):
    run_import(
        str(jsonl_file),
        "--user-column=who",
        "--timestamp-column=at",
        "--timestamp-format=epoch",
        "--value-column=amount",
        "--action-type=legacy",
    )

    assert set(UserAction.objects.values_list("action_type", flat=True)) == {"legacy"}


def test_it_stops_at_an_invalid_row_and_names_it(tmp_path, alice):
    path = tmp_path / "bad.csv"
    path.write_text(
        "user_id,action_type,action_timestamp,value\n"
        f"{alice.pk},spin,2021-05-01T10:00:00Z,1\n"
        f"{alice.pk},spin,2021-05-01T10:00:00Z,-1\n"
    )

    with pytest.raises(CommandError, match="line 3: value: must be >= 0"):
        run_import(str(path))
    assert not UserAction.objects.exists()


def test_it_skips_invalid_rows_when_asked(tmp_path, alice):
    path = tmp_path / "bad.csv"
    path.write_text(
        "user_id,action_type,action_timestamp,value\n"
        f"{alice.pk},spin,2021-05-01T10:00:00Z,1\n"
        f"{alice.pk},spin wheel,2021-05-01T10:00:00Z,1\n"
        "999999,spin,2021-05-01T10:00:00Z,1\n"
    )

    output = run_import(str(path), "--skip-invalid")

    assert UserAction.objects.count() == 1
    assert "2 invalid rows skipped" in output


def test_it_refuses_a_file_without_the_needed_columns(tmp_path):
    path = tmp_path / "columns.csv"
    path.write_text("customer,when\n1,2021-05-01\n")

    with pytest.raises(CommandError, match="missing columns"):
        run_import(str(path))


def test_it_creates_missing_users_by_name(tmp_path):
    path = tmp_path / "shop.csv"
    path.write_text(
        "customer,action_type,action_timestamp\n"
        "17,spin,2021-05-01T10:00:00Z\n"
        "17,spin,2021-05-02T10:00:00Z\n"
        "18,spin,2021-05-02T10:00:00Z\n"
    )

    run_import(
        str(path),
        "--user-column=customer",
        "--username-template=shop-{}",
        "--create-users",
    )

    names = get_user_model().objects.values_list("username", flat=True)
    assert sorted(names) == ["shop-17", "shop-18"]
    assert UserAction.objects.count() == 3


def test_it_moves_the_latest_action_to_now_keeping_the_spacing(csv_file):
    before = timezone.now()

    run_import(str(csv_file), "--shift-to-now")

    stamps = sorted(UserAction.objects.values_list("action_timestamp", flat=True))
    assert before <= stamps[-1] <= timezone.now()
    assert stamps[-1] - stamps[0] == timedelta(days=1, hours=22)


def test_it_imports_the_cdnow_sample(tmp_path):
    run_import(str(CDNOW_SAMPLE), "--format=cdnow", "--create-users", "--shift-to-now")

    users = get_user_model().objects.filter(username__startswith="cdnow-")
    purchases = UserAction.objects.filter(action_type="purchase")
    assert purchases.count() == 2000
    assert users.count() == len({row.user for row in read_cdnow(CDNOW_SAMPLE)})


def test_it_keeps_the_cdnow_amounts_to_the_cent():
    expected = sum(row.value for row in read_cdnow(CDNOW_SAMPLE))

    import_cdnow(CDNOW_SAMPLE)

    assert UserAction.objects.aggregate(total=Sum("value"))["total"] == expected


def test_it_names_cdnow_customers_as_the_file_does():
    import_cdnow(CDNOW_SAMPLE)

    first = UserAction.objects.filter(user__username="cdnow-00001").get()
    assert (first.value, first.metadata) == (Decimal("11.77"), {"cds": 1})


def test_it_finds_the_cdnow_file_of_the_preset():
    from actions.importer import cdnow_path

    assert cdnow_path().name == "CDNOW_master.txt"
