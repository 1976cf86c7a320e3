"""Fixtures of the accounts tests: invite codes, rates, concurrency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.utils import timezone

PASSWORD = "correct-horse-battery-9"


def set_throttle_rates(settings, **rates: str) -> None:
    """Override REST_FRAMEWORK throttle rates; DRF reloads its settings."""
    current = settings.REST_FRAMEWORK
    settings.REST_FRAMEWORK = {
        **current,
        "DEFAULT_THROTTLE_RATES": {**current["DEFAULT_THROTTLE_RATES"], **rates},
    }


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # The real hasher takes a good part of a second per password by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttles(settings):
    """Every test starts with empty counters and rates it cannot hit by chance."""
    cache.delete_pattern("throttle:*")
    set_throttle_rates(settings, auth="10000/hour", invite="10000/hour")


@pytest.fixture
def throttle_rates(settings):
    def apply(**rates: str) -> None:
        set_throttle_rates(settings, **rates)

    return apply


@pytest.fixture
def make_invite(db):
    from ccweb.accounts.models import InviteCode

    counter = iter(range(1, 1_000_000))

    def make(**fields) -> InviteCode:
        fields.setdefault("code", f"T{next(counter):05d}")
        return InviteCode.objects.create(**fields)

    return make


@pytest.fixture
def invite(make_invite):
    return make_invite(code="JOIN-2025")


@pytest.fixture
def past():
    return timezone.now() - timedelta(hours=1)


@pytest.fixture
def signup():
    """POST a signup with a strong password; `fields` add or replace fields."""
    from rest_framework.test import APIClient

    def post(username: str, code: str, **fields):
        body = {"username": username, "password": PASSWORD, "invite_code": code}
        return APIClient().post("/api/auth/signup", {**body, **fields}, format="json")

    return post
