"""Users, tokens, segments and streaks the HTTP benchmarks act as and read."""

from __future__ import annotations

import random
from dataclasses import dataclass

BENCH_USERNAME_PREFIX = "bench-user-"
SEGMENT_MIX = [
    ("Whale", "High-Risk"),
    ("Whale", "Low-Risk"),
    ("High Engaged", "Moderate-Risk"),
    ("Medium", "Low-Risk"),
    ("Medium", "Unknown"),
    ("Low", "Unknown"),
]
ACTION_TYPES = ["spin", "bet", "reward_claimed", "purchase", "login", "level.up"]


@dataclass(frozen=True)
class BenchUser:
    id: int
    username: str
    token: str
    rfm_group: str
    risk_profile: str
    streak: int


def ensure_users(count: int) -> list[BenchUser]:
    """`count` users with a segment each and a fresh access token each.

    Passwords are unusable: the benchmarks authenticate with minted tokens,
    and hashing a password per user would only slow the seeding down.
    """
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    from segments.models import UserSegment

    user_model = get_user_model()
    names = [f"{BENCH_USERNAME_PREFIX}{number:04d}" for number in range(count)]
    existing = set(
        user_model.objects.filter(username__in=names).values_list("username", flat=True)
    )
    fresh = []
    for name in names:
        if name not in existing:
            user = user_model(username=name, nickname=name)
            user.set_unusable_password()
            fresh.append(user)
    user_model.objects.bulk_create(fresh)
    users = list(user_model.objects.filter(username__in=names).order_by("username"))

    seeded = []
    for number, user in enumerate(users):
        group, risk = SEGMENT_MIX[number % len(SEGMENT_MIX)]
        UserSegment.objects.update_or_create(
            user=user, defaults={"rfm_group": group, "risk_profile": risk}
        )
        seeded.append(
            BenchUser(
                id=user.id,
                username=user.username,
                token=str(AccessToken.for_user(user)),
                rfm_group=group,
                risk_profile=risk,
                streak=1 + number % 9,
            )
        )
    return seeded


def set_streaks(users: list[BenchUser]) -> None:
    """Give each user the streak the recommendation will read.

    `user:{id}:streak_count` is the contract with analysts and other
    services, and the peer reads the same key, so both answer from the same
    value. The state the update script reasons from (`actions.streaks`) is
    set to match: a run of that many days ending today.
    """
    import redis
    from django.conf import settings
    from django.utils import timezone

    from actions.streaks import SECONDS_PER_DAY, state_key, utc_day
    from ccweb.redis import streak_key

    today = utc_day(timezone.now())
    client = redis.Redis.from_url(settings.REDIS_URL)
    with client.pipeline(transaction=False) as pipe:
        for user in users:
            pipe.hset(state_key(user.id), mapping={"day": today, "count": user.streak})
            pipe.expire(state_key(user.id), 3 * SECONDS_PER_DAY)
            pipe.set(streak_key(user.id), user.streak, ex=2 * SECONDS_PER_DAY)
        pipe.execute()
    client.close()


def seed_peer_segments(users: list[BenchUser]) -> None:
    """The same segments in the peer's own table (which the peer created)."""
    from django.db import connection

    rows = [(user.id, user.rfm_group, user.risk_profile) for user in users]
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM peer_user_segments WHERE user_id = ANY(%s)",
            [[user.id for user in users]],
        )
        cursor.executemany(
            "INSERT INTO peer_user_segments (user_id, rfm_group, risk_profile) "
            "VALUES (%s, %s, %s)",
            rows,
        )


def action_body(user: BenchUser, rng: random.Random) -> dict:
    """A small, plausible action; types, values and metadata vary a little."""
    action_type = rng.choice(ACTION_TYPES)
    value = round(rng.choice([0, 0, 1, 5, 20, 100]) * rng.random(), 2)
    metadata = {
        "game": rng.choice(["slots", "roulette", "poker"]),
        "round": rng.randint(1, 500),
    }
    return {
        "user_id": user.id,
        "action_type": action_type,
        "value": value,
        "metadata": metadata,
    }
