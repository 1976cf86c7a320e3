"""Activity streaks: consecutive UTC calendar days with at least one action.

A streak counts the days of the user's latest run of consecutive active
days, and only while that run ends today or yesterday. Days are numbered
from the Unix epoch (UTC), so "the next day" is simply day + 1.

In Redis each user has two keys:

- `user:{id}:streak_count`: the count as a plain integer (GET). It expires
  at the end of the day after the last active day, when the streak breaks,
  so a reader that only does GET is never told a stale number.
- `user:{id}:streak`: a hash `{day, count}`, the last active day and the
  length of the run ending on it. It is what the update script reasons
  from, and it lives STATE_TTL (the API's back-dating limit plus two days),
  so a late back-dated action still joins the run it belongs to.

Both are written by one Lua script: concurrent actions of one user never
lose an update. Actions dated before the stored last day change nothing.

Without REDIS_URL (the embedded default) the same state lives in the Django
cache. That cache is per process and its updates are not atomic across
processes: good enough for one local process, documented in
docs/ingestion.md.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from redis.exceptions import RedisError

from actions.metrics import STREAK_UPDATE_FAILURES, OutageLog
from ccweb.redis import redis_client, redis_enabled, streak_key

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86_400
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
REDIS_WRITE_CHUNK = 1_000

# KEYS[1] state hash, KEYS[2] plain count key.
# ARGV[1] now (Unix seconds), ARGV[2] state TTL (seconds),
# ARGV[3..] the days of the new actions, ascending.
UPDATE_SCRIPT = """
local state = redis.call("HMGET", KEYS[1], "day", "count")
local day = tonumber(state[1])
local count = tonumber(state[2]) or 0
local changed = false
for i = 3, #ARGV do
  local new_day = tonumber(ARGV[i])
  if day == nil or new_day > day then
    if day ~= nil and new_day == day + 1 then
      count = count + 1
    else
      count = 1
    end
    day = new_day
    changed = true
  end
end
if changed then
  redis.call("HSET", KEYS[1], "day", day, "count", count)
  redis.call("EXPIRE", KEYS[1], ARGV[2])
  local ttl = (day + 2) * 86400 - tonumber(ARGV[1])
  if ttl > 0 then
    redis.call("SET", KEYS[2], count, "EX", ttl)
  else
    redis.call("DEL", KEYS[2])
  end
end
return count
"""

_outage_log = OutageLog("streak updates (Redis at REDIS_URL)")
_scripts: dict[int, object] = {}


def state_key(user_id: int) -> str:
    return f"user:{user_id}:streak"


def state_ttl_seconds() -> int:
    return (settings.RFM_WINDOW_DAYS + 2) * SECONDS_PER_DAY


def utc_day(moment: datetime) -> int:
    """The UTC calendar day of `moment`, counted from 1970-01-01."""
    return moment.astimezone(UTC).date().toordinal() - EPOCH_ORDINAL


def day_number(day: date) -> int:
    return day.toordinal() - EPOCH_ORDINAL


def _update_script(client):
    # A Script computes its SHA once; keep one per client (one per process).
    script = _scripts.get(id(client))
    if script is None:
        script = client.register_script(UPDATE_SCRIPT)
        _scripts[id(client)] = script
    return script


def _script_args(days: Iterable[int], now: datetime) -> list[int]:
    return [int(now.timestamp()), state_ttl_seconds(), *sorted(set(days))]


# --- Updates ------------------------------------------------------------------


def record_activity(days_by_user: Mapping[int, Iterable[int]]) -> None:
    """Fold the active days of each user into their streak.

    Raises RedisError when Redis fails; `record_activity_or_warn` is the
    variant for request paths.
    """
    days_by_user = {user_id: set(days) for user_id, days in days_by_user.items()}
    now = timezone.now()
    if not redis_enabled():
        for user_id, days in days_by_user.items():
            _record_in_cache(user_id, sorted(days), now)
        return

    pending = _not_recorded_lately(days_by_user)
    if not pending:
        return
    client = redis_client()
    script = _update_script(client)
    if len(pending) == 1:
        # One user (the single-action endpoint): one EVALSHA round trip.
        ((user_id, days),) = pending.items()
        script(
            keys=[state_key(user_id), streak_key(user_id)],
            args=_script_args(days, now),
        )
    else:
        pipeline = client.pipeline(transaction=False)
        for user_id, days in pending.items():
            script(
                keys=[state_key(user_id), streak_key(user_id)],
                args=_script_args(days, now),
                client=pipeline,
            )
        pipeline.execute()
    _remember(pending)


# Users whose latest day this process recorded in Redis lately: {user_id:
# (day, monotonic deadline)}. Recording a day that is not after it changes
# nothing (the script ignores it), so the round trip is skipped: a player
# spinning all day costs one script run a day per process, not one a spin.
# The memory is short, so a Redis that lost its data is written again soon;
# `rebuild_streaks` restores the rest.
_recorded: dict[int, tuple[int, float]] = {}
RECORDED_SECONDS = 60.0
RECORDED_MAX_USERS = 100_000


def _not_recorded_lately(days_by_user: dict[int, set[int]]) -> dict[int, set[int]]:
    clock = time.monotonic()
    pending = {}
    for user_id, days in days_by_user.items():
        recorded = _recorded.get(user_id)
        if recorded is None or clock > recorded[1] or max(days) > recorded[0]:
            pending[user_id] = days
    return pending


def _remember(recorded: dict[int, set[int]]) -> None:
    if len(_recorded) + len(recorded) > RECORDED_MAX_USERS:
        _recorded.clear()
    deadline = time.monotonic() + RECORDED_SECONDS
    for user_id, days in recorded.items():
        _recorded[user_id] = (max(days), deadline)


def forget_recorded() -> None:
    """Drop the memory of recent updates (tests that empty Redis call this)."""
    _recorded.clear()


def record_activity_or_warn(days_by_user: Mapping[int, Iterable[int]]) -> None:
    """`record_activity`, but a Redis failure is logged and counted, not raised.

    The action is already stored: a streak that lags is repaired by
    `manage.py rebuild_streaks`, a failed request is not.
    """
    try:
        record_activity(days_by_user)
    except RedisError as error:
        STREAK_UPDATE_FAILURES.inc()
        _outage_log.failed(error)
        return
    _outage_log.succeeded()


def _record_in_cache(user_id: int, days: list[int], now: datetime) -> None:
    day, count = cache.get(state_key(user_id)) or (None, 0)
    changed = False
    for new_day in days:
        if day is None or new_day > day:
            count = count + 1 if day is not None and new_day == day + 1 else 1
            day = new_day
            changed = True
    if changed:
        cache.set(state_key(user_id), (day, count), timeout=state_ttl_seconds())


# --- Reads --------------------------------------------------------------------


def current_streak(user_id: int, *, now: datetime | None = None) -> int:
    """The user's streak now: 0 when none, or when it ended before yesterday.

    Raises redis.exceptions.RedisError (or a subclass) when Redis fails, so
    callers can degrade.
    """
    today = utc_day(now or timezone.now())
    if redis_enabled():
        day, count = redis_client().hmget(state_key(user_id), ["day", "count"])
    else:
        day, count = cache.get(state_key(user_id)) or (None, None)
    if day is None or count is None or int(day) < today - 1:
        return 0
    return int(count)


# --- Rebuild from the database ------------------------------------------------


@dataclass(frozen=True)
class Run:
    """The latest run of consecutive active days of one user."""

    user_id: int
    last_day: int
    length: int


@dataclass(frozen=True)
class RebuildResult:
    users: int
    current: int
    removed: int


# Gaps and islands: within one user's distinct days, day minus its rank is
# constant along a run of consecutive days; the latest run is the one with
# the greatest last day.
LATEST_RUNS_SQL = """
WITH recent AS (
    SELECT DISTINCT user_id FROM user_actions WHERE action_timestamp >= %(horizon)s
), days AS (
    SELECT DISTINCT a.user_id, (a.action_timestamp AT TIME ZONE 'UTC')::date AS day
    FROM user_actions AS a JOIN recent USING (user_id)
), islands AS (
    SELECT user_id, day,
           day - (row_number() OVER (PARTITION BY user_id ORDER BY day))::int AS island
    FROM days
)
SELECT DISTINCT ON (user_id) user_id, max(day) AS last_day, count(*) AS length
FROM islands
GROUP BY user_id, island
ORDER BY user_id, max(day) DESC
"""


def latest_runs(horizon: datetime) -> Iterator[Run]:
    """The latest run of every user with an action since `horizon`."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(LATEST_RUNS_SQL, {"horizon": horizon})
            while rows := cursor.fetchmany(10_000):
                for user_id, last_day, length in rows:
                    yield Run(user_id, day_number(last_day), length)
        return
    yield from _latest_runs_portable(horizon)


def _latest_runs_portable(horizon: datetime) -> Iterator[Run]:
    """The same runs from distinct (user, day) pairs, folded in Python."""
    from django.db.models.functions import TruncDate

    from actions.models import UserAction

    recent = UserAction.objects.filter(action_timestamp__gte=horizon).values("user_id")
    pairs = (
        UserAction.objects.filter(user_id__in=recent)
        .annotate(day=TruncDate("action_timestamp", tzinfo=UTC))
        .values_list("user_id", "day")
        .distinct()
        .order_by("user_id", "day")
    )
    current: Run | None = None
    for user_id, day in pairs.iterator(chunk_size=10_000):
        number = day_number(day)
        if current is not None and current.user_id != user_id:
            yield current
            current = None
        if current is not None and number == current.last_day + 1:
            current = Run(user_id, number, current.length + 1)
        else:
            current = Run(user_id, number, 1)
    if current is not None:
        yield current


def rebuild_streaks(*, now: datetime | None = None) -> RebuildResult:
    """Recompute every streak from user_actions and replace what Redis holds.

    Users without an action in the state horizon get no keys (their streak
    reads 0); keys of users who no longer have a streak are deleted.
    """
    now = now or timezone.now()
    horizon = now - timedelta(seconds=state_ttl_seconds())
    today = utc_day(now)

    if not redis_enabled():
        users = current = 0
        for run in latest_runs(horizon):
            cache.set(
                state_key(run.user_id),
                (run.last_day, run.length),
                timeout=state_ttl_seconds(),
            )
            users += 1
            current += run.last_day >= today - 1
        return RebuildResult(users=users, current=current, removed=0)

    client = redis_client()
    rebuilt: set[int] = set()
    current = 0
    pipeline = client.pipeline(transaction=False)
    for run in latest_runs(horizon):
        rebuilt.add(run.user_id)
        _queue_run(pipeline, run, now)
        current += run.last_day >= today - 1
        if len(pipeline) >= REDIS_WRITE_CHUNK:
            pipeline.execute()
    pipeline.execute()
    removed = _remove_stale_keys(client, keep=rebuilt)
    logger.info(
        "streaks rebuilt: %d users with recent actions, %d current streaks, "
        "%d stale keys removed",
        len(rebuilt),
        current,
        removed,
    )
    return RebuildResult(users=len(rebuilt), current=current, removed=removed)


def _queue_run(pipeline, run: Run, now: datetime) -> None:
    pipeline.hset(
        state_key(run.user_id), mapping={"day": run.last_day, "count": run.length}
    )
    pipeline.expire(state_key(run.user_id), state_ttl_seconds())
    ttl = (run.last_day + 2) * SECONDS_PER_DAY - int(now.timestamp())
    if ttl > 0:
        pipeline.set(streak_key(run.user_id), run.length, ex=ttl)
    else:
        pipeline.delete(streak_key(run.user_id))


def _remove_stale_keys(client, *, keep: set[int]) -> int:
    stale = []
    for pattern in ("user:*:streak", "user:*:streak_count"):
        for raw_key in client.scan_iter(match=pattern, count=1_000):
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            _, user_part, _ = key.split(":", 2)
            if not user_part.isdigit() or int(user_part) not in keep:
                stale.append(key)
    for start in range(0, len(stale), REDIS_WRITE_CHUNK):
        client.delete(*stale[start : start + REDIS_WRITE_CHUNK])
    return len(stale)


def days_by_user(pairs: Iterable[tuple[int, datetime]]) -> dict[int, set[int]]:
    """{user_id: {utc days}} of (user_id, action_timestamp) pairs."""
    grouped: dict[int, set[int]] = defaultdict(set)
    # A batch mostly repeats one user and one moment: compute each pair once.
    for user_id, moment in set(pairs):
        grouped[user_id].add(utc_day(moment))
    return grouped
