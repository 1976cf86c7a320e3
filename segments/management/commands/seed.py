"""Fill the database with realistic synthetic players, actions and visits.

Players follow a few personas (whales, engaged, casual, dormant) so that the
RFM batch finds every group. The same --seed always builds the same players
with the same history relative to now; running again only adds the players
that are missing, so the command is safe to repeat. The fixed accounts
(`demo`, a player, and `staff`, an admin) are created or reset every time.

Seeded actions are history: they skip the Kafka outbox, and streaks in Redis
are not touched (run `manage.py rebuild_streaks` afterwards).
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.utils import timezone

from actions.models import UserAction
from segments.rfm import compute_rfm_and_update_segments
from visits.models import SiteVisit

BATCH_SIZE = 5000
SEEDED_METADATA = {"seeded": True}
DEMO_USERNAME = "demo"
STAFF_USERNAME = "staff"
VISIT_SOURCES = ("app_banner", "push_notification", "email", "profile_page")


@dataclass(frozen=True)
class Persona:
    name: str
    share: float
    actions_per_day: float
    purchase_chance: float
    purchase_mean: float
    # Days since the player's last action: drawn between these bounds.
    idle_days: tuple[int, int]


PERSONAS = (
    Persona("whale", 0.02, 6.0, 0.35, 180.0, (0, 1)),
    Persona("engaged", 0.08, 2.5, 0.25, 60.0, (0, 4)),
    Persona("casual", 0.40, 0.6, 0.15, 20.0, (0, 14)),
    Persona("dormant", 0.50, 0.2, 0.05, 10.0, (15, 120)),
)


def pick_persona(rng: random.Random) -> Persona:
    draw = rng.random()
    for persona in PERSONAS:
        if draw < persona.share:
            return persona
        draw -= persona.share
    return PERSONAS[-1]


def player_history(
    rng: random.Random, persona: Persona, now: datetime, days: int
) -> Iterator[tuple[str, datetime, Decimal]]:
    """(action type, moment, value) of one player's actions, oldest first."""
    idle = rng.randint(*persona.idle_days)
    if idle >= days:
        return
    active_days = rng.randint(1, days - idle)
    last = now - timedelta(days=idle, seconds=rng.randint(0, 20_000))
    first = last - timedelta(days=active_days - 1)
    count = max(1, round(rng.expovariate(1 / persona.actions_per_day) * active_days))
    span = (last - first).total_seconds()
    for offset in sorted(rng.uniform(0, span) for _ in range(count - 1)):
        yield _one_action(rng, persona, first + timedelta(seconds=offset))
    yield _one_action(rng, persona, last)


def _one_action(
    rng: random.Random, persona: Persona, moment: datetime
) -> tuple[str, datetime, Decimal]:
    if rng.random() < persona.purchase_chance:
        amount = rng.lognormvariate(0, 0.8) * persona.purchase_mean
        return "purchase", moment, Decimal(f"{amount:.2f}")
    kind = rng.choices(("spin", "reward_claimed", "level_up"), (8, 3, 1))[0]
    return kind, moment, Decimal("0.00")


class Command(BaseCommand):
    help = (
        "Create synthetic players with actions and site visits, plus the fixed "
        "accounts demo and staff; then run the RFM batch. Local data only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--users", type=int, default=1000, help="players")
        parser.add_argument(
            "--days", type=int, default=60, help="days of history (ending now)"
        )
        parser.add_argument("--seed", type=int, default=1, help="random seed")
        parser.add_argument(
            "--password",
            default="ccweb-demo-password",
            help="password of the fixed accounts demo and staff",
        )
        parser.add_argument(
            "--no-rfm", action="store_true", help="do not run the RFM batch after"
        )
        parser.add_argument(
            "--force", action="store_true", help="run even when DEBUG is off"
        )

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed writes well-known passwords: it runs with DEBUG on, or "
                "with --force on a database that may hold fake data"
            )
        if options["users"] < 0 or options["days"] < 1:
            raise CommandError("--users must be >= 0 and --days >= 1")
        started = time.monotonic()
        rng = random.Random(options["seed"])  # noqa: S311  # nosec B311 (fake data)
        now = timezone.now()

        demo_created = self._fixed_accounts(options["password"])
        players = self._players(options["users"], options["seed"])
        if demo_created:
            players.append((self._user(DEMO_USERNAME).pk, PERSONAS[1]))
        actions, visits = self._history(rng, players, now, options["days"])

        self.stdout.write(
            f"seed: {len(players)} new players, {actions} actions, {visits} visits "
            f"in {time.monotonic() - started:.1f}s; accounts {DEMO_USERNAME} and "
            f"{STAFF_USERNAME} ready"
        )
        if not options["no_rfm"]:
            self.stdout.write(compute_rfm_and_update_segments().describe())

    def _user(self, username: str):
        return get_user_model().objects.get(username=username)

    def _fixed_accounts(self, password: str) -> bool:
        """Create or reset demo and staff; True when demo is new."""
        user_model = get_user_model()
        demo_created = False
        for username, is_staff in ((DEMO_USERNAME, False), (STAFF_USERNAME, True)):
            user, created = user_model.objects.get_or_create(
                username=username,
                defaults={
                    "nickname": username.capitalize(),
                    "is_staff": is_staff,
                    "is_superuser": is_staff,
                },
            )
            if not user.check_password(password):
                user.set_password(password)
                user.save(update_fields=["password"])
            if username == DEMO_USERNAME:
                demo_created = created
        return demo_created

    def _players(self, count: int, seed: int) -> list[tuple[int, Persona]]:
        """Create the missing players of this seed; their ids and personas."""
        user_model = get_user_model()
        persona_rng = random.Random(f"personas-{seed}")  # noqa: S311  # nosec B311
        wanted = {
            f"player{seed}-{number:07d}": pick_persona(persona_rng)
            for number in range(count)
        }
        prefix = f"player{seed}-"
        of_this_seed = user_model.objects.filter(username__startswith=prefix)
        existing = set(of_this_seed.values_list("username", flat=True))
        # An unusable password: seeded players never log in.
        unusable = make_password(None)
        joined = timezone.now()
        new_users = [
            user_model(
                username=username,
                nickname=f"Player {username.rsplit('-', 1)[1]}",
                password=unusable,
                date_joined=joined,
            )
            for username in wanted
            if username not in existing
        ]
        with transaction.atomic():
            user_model.objects.bulk_create(new_users, batch_size=BATCH_SIZE)
        ids = dict(of_this_seed.values_list("username", "id"))
        return [(ids[user.username], wanted[user.username]) for user in new_users]

    def _history(
        self,
        rng: random.Random,
        players: list[tuple[int, Persona]],
        now: datetime,
        days: int,
    ) -> tuple[int, int]:
        action_rows: list[tuple] = []
        visit_rows: list[tuple] = []
        actions = visits = 0
        for user_id, persona in players:
            for kind, moment, value in player_history(rng, persona, now, days):
                event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
                action_rows.append((user_id, kind, moment, value, event_id))
                if rng.random() < 0.05:
                    source = rng.choice(VISIT_SOURCES)
                    visit_rows.append((user_id, source, moment - timedelta(seconds=30)))
            if len(action_rows) >= BATCH_SIZE:
                write_history(action_rows, visit_rows, now)
                actions += len(action_rows)
                visits += len(visit_rows)
                action_rows, visit_rows = [], []
        write_history(action_rows, visit_rows, now)
        return actions + len(action_rows), visits + len(visit_rows)


def write_history(action_rows: list[tuple], visit_rows: list[tuple], now) -> None:
    """Store rows in one transaction: COPY on PostgreSQL, bulk_create elsewhere."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            _copy_rows(action_rows, visit_rows, now)
            return
        UserAction.objects.bulk_create(
            [
                UserAction(
                    user_id=user_id,
                    action_type=kind,
                    action_timestamp=moment,
                    value=value,
                    metadata=SEEDED_METADATA,
                    event_id=event_id,
                )
                for user_id, kind, moment, value, event_id in action_rows
            ],
            batch_size=BATCH_SIZE,
        )
        SiteVisit.objects.bulk_create(
            [
                SiteVisit(user_id=user_id, source=source, visit_timestamp=moment)
                for user_id, source, moment in visit_rows
            ],
            batch_size=BATCH_SIZE,
        )


def _copy_rows(action_rows: list[tuple], visit_rows: list[tuple], now) -> None:
    metadata = json.dumps(SEEDED_METADATA)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY user_actions (user_id, action_type, action_timestamp, value, "
            "event_id, metadata, created_at) FROM STDIN"
        ) as copy:
            for row in action_rows:
                copy.write_row((*row, metadata, now))
        with raw.copy(
            "COPY site_visits (user_id, source, visit_timestamp) FROM STDIN"
        ) as copy:
            for row in visit_rows:
                copy.write_row(row)
