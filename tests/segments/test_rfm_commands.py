"""The commands around the batch: seed, reset_db, explain_queries."""

from __future__ import annotations

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from actions.models import UserAction
from segments.models import UserSegment
from visits.models import SiteVisit

pytestmark = pytest.mark.django_db

QUERY_NAMES = [
    "RFM aggregation",
    "RFM batch aggregate",
    "RFM batch upsert",
    "per-user action lookup",
    "recommendation lookup",
    "outbox claim",
]


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # The fixed accounts get real passwords; the real hasher is slow by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(*extra: str) -> None:
    call_command("seed", "--users", "60", "--seed", "7", "--force", *extra)


def test_it_seeds_players_with_actions_visits_and_segments():
    seed()

    users = get_user_model().objects.count()
    assert users == 62
    assert UserAction.objects.count() > 60
    assert SiteVisit.objects.exists()
    assert UserSegment.objects.count() == users


def test_it_seeds_every_group_at_realistic_size():
    call_command("seed", "--users", "1500", "--seed", "3", "--force")

    groups = set(UserSegment.objects.values_list("rfm_group", flat=True))
    assert groups == {"Whale", "High Engaged", "Medium", "Low"}


def test_it_seeds_again_without_duplicates():
    seed("--no-rfm")
    before = (get_user_model().objects.count(), UserAction.objects.count())

    seed("--no-rfm")

    after = (get_user_model().objects.count(), UserAction.objects.count())
    assert after == before


@pytest.mark.parametrize(
    ("username", "is_staff"), [("demo", False), ("staff", True)], ids=str
)
def test_it_creates_the_fixed_accounts(username, is_staff):
    seed("--no-rfm", "--password", "a-local-password")

    user = authenticate(username=username, password="a-local-password")

    assert user is not None
    assert user.is_staff is is_staff


def test_it_refuses_to_seed_with_debug_off():
    with pytest.raises(CommandError, match="DEBUG"):
        call_command("seed", "--users", "1")


def test_it_refuses_to_reset_without_confirmation(alice):
    with pytest.raises(CommandError, match="--yes"):
        call_command("reset_db")

    assert get_user_model().objects.filter(pk=alice.pk).exists()


def test_it_refuses_to_reset_with_debug_off_unless_forced(alice):
    with pytest.raises(CommandError, match="--force"):
        call_command("reset_db", "--yes")

    assert get_user_model().objects.filter(pk=alice.pk).exists()


def test_it_explains_every_hot_query_with_real_timings(capsys):
    seed("--no-rfm")

    call_command("explain_queries")

    output = capsys.readouterr().out
    assert [name for name in QUERY_NAMES if f"== {name}" in output] == QUERY_NAMES
    assert output.count("Execution Time") == len(QUERY_NAMES)


def test_it_rolls_back_what_explain_analyze_wrote(capsys):
    seed("--no-rfm")

    call_command("explain_queries")

    assert not UserSegment.objects.exists()
