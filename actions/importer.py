"""Backfill actions from files: CSV, JSON lines, and the CDNOW sample data set.

`manage.py import_actions` is the command; the functions here do the work
and can be called from code (`import_cdnow` loads the CDNOW data set in one
call). The rows of a file are read lazily, checked with the
API's rules except its age limit (old history is the point of an import),
and written in chunks, each chunk in its own transaction:

- PostgreSQL: COPY into a temporary table, then `INSERT ... ON CONFLICT
  (event_id) DO NOTHING` into user_actions;
- other databases: bulk_create.

A row without an event_id gets one derived from the source and its line
number, so importing the same file again stores nothing twice; an import
stopped half way (an invalid row, a crash) can simply be run again.
Outbox rows are written only with `publish=True`: a backfill usually must
not flood the topic. Streaks are not touched; `manage.py rebuild_streaks`
recomputes them from the database afterwards.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import islice
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction
from django.db.models.functions import Lower
from django.utils import timezone

from actions.models import OutboxEvent, UserAction
from actions.serializers import (
    ACTION_TYPE_REGEX,
    FUTURE_TOLERANCE,
    METADATA_MAX_BYTES,
    encode_metadata,
)
from actions.store import ActionDraft, encode_json
from ccweb.serializers import contains_nul

# Derived event ids: uuid5 of "<source>:<line>" in this namespace.
EVENT_ID_NAMESPACE = uuid.UUID("5b0c56a4-4d39-4f4e-9a7e-0f6f3c1f2a11")
DEFAULT_CHUNK_SIZE = 10_000
MAX_VALUE = Decimal("9999999999999999.99")
CDNOW_ACTION_TYPE = "purchase"
CDNOW_USERNAME_TEMPLATE = "cdnow-{}"
PROBLEMS_NOTED = 20


class InvalidRow(ValueError):
    def __init__(self, line: int, problem: str) -> None:
        super().__init__(f"line {line}: {problem}")
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One action of a file, checked. `user` is an id or a username, as text."""

    line: int
    user: str
    action_type: str
    action_timestamp: datetime
    value: Decimal
    metadata: dict
    event_id: uuid.UUID


@dataclass
class ImportResult:
    rows: int = 0
    inserted: int = 0
    existing: int = 0
    skipped: int = 0
    users_created: int = 0
    problems: list[str] = field(default_factory=list)

    def reject(self, invalid: InvalidRow, *, skip: bool) -> None:
        """Raise `invalid`, or count it (and note the first few) when skipping."""
        if not skip:
            raise invalid
        self.skipped += 1
        if len(self.problems) < PROBLEMS_NOTED:
            self.problems.append(str(invalid))


@dataclass
class ColumnMapping:
    """Where each field is in a CSV or JSON lines file, and how to read it."""

    user_column: str = "user_id"
    timestamp_column: str = "action_timestamp"
    value_column: str = "value"
    type_column: str = "action_type"
    metadata_column: str = "metadata"
    event_id_column: str = "event_id"
    # A fixed type for every row instead of a type column.
    action_type: str | None = None
    # None: ISO 8601; "epoch": Unix seconds; else a strptime format.
    timestamp_format: str | None = None
    # Usernames are built from the user column with this template.
    username_template: str = "{}"


# --- Checking one row ---------------------------------------------------------


def parse_timestamp(raw, timestamp_format: str | None) -> datetime:
    """An aware UTC datetime; a time without an offset is taken as UTC."""
    if timestamp_format == "epoch":
        moment = datetime.fromtimestamp(float(raw), UTC)
    elif timestamp_format:
        moment = datetime.strptime(str(raw).strip(), timestamp_format)
    else:
        moment = datetime.fromisoformat(str(raw).strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def parse_value(raw) -> Decimal:
    if raw is None or raw == "":
        return Decimal("0.00")
    if isinstance(raw, bool):
        raise ValueError("value: expected a number")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"value: {raw!r} is not a number") from None
    if not value.is_finite():
        raise ValueError("value: must be finite")
    if value < 0:
        raise ValueError("value: must be >= 0")
    if value.as_tuple().exponent < -2:
        raise ValueError("value: at most 2 decimal places")
    if value > MAX_VALUE:
        raise ValueError("value: too large for the column")
    return value.quantize(Decimal("0.01"))


def parse_metadata(raw) -> dict:
    if raw is None or raw == "":
        return {}
    metadata = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(metadata, dict):
        raise ValueError("metadata: expected a JSON object")
    encoded = encode_metadata(metadata)
    if len(encoded) > METADATA_MAX_BYTES:
        raise ValueError(f"metadata: at most {METADATA_MAX_BYTES} bytes of JSON")
    if contains_nul(metadata):
        raise ValueError("metadata: NUL characters are not allowed")
    return metadata


def check_text(name: str, text: str) -> str:
    if "\x00" in text:
        raise ValueError(f"{name}: NUL characters are not allowed")
    return text


def derived_event_id(source: str, line: int) -> uuid.UUID:
    return uuid.uuid5(EVENT_ID_NAMESPACE, f"{source}:{line}")


def row_from_record(
    record: dict, line: int, mapping: ColumnMapping, source: str
) -> ImportRow:
    """Check one record (CSV row or JSON object); raises InvalidRow."""
    try:
        raw_user = record.get(mapping.user_column)
        if raw_user is None or str(raw_user).strip() == "":
            raise ValueError(f"{mapping.user_column}: missing")
        user = mapping.username_template.format(str(raw_user).strip())

        action_type = mapping.action_type or record.get(mapping.type_column)
        if not isinstance(action_type, str) or not ACTION_TYPE_REGEX.match(action_type):
            raise ValueError(
                f"{mapping.type_column}: 1-64 letters, digits, '_', '-' or '.'"
            )

        raw_timestamp = record.get(mapping.timestamp_column)
        if raw_timestamp is None or raw_timestamp == "":
            raise ValueError(f"{mapping.timestamp_column}: missing")
        moment = parse_timestamp(raw_timestamp, mapping.timestamp_format)

        raw_event_id = record.get(mapping.event_id_column)
        event_id = (
            uuid.UUID(str(raw_event_id))
            if raw_event_id not in (None, "")
            else derived_event_id(source, line)
        )
        return ImportRow(
            line=line,
            user=check_text(mapping.user_column, user),
            action_type=action_type,
            action_timestamp=moment,
            value=parse_value(record.get(mapping.value_column)),
            metadata=parse_metadata(record.get(mapping.metadata_column)),
            event_id=event_id,
        )
    except (ValueError, TypeError, OverflowError, KeyError, IndexError) as error:
        raise InvalidRow(line, str(error)) from None


# --- Readers --------------------------------------------------------------------


def read_csv(path: Path, mapping: ColumnMapping) -> Iterator[ImportRow | InvalidRow]:
    """Rows of a CSV file with a header line; bad rows come as InvalidRow."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        _check_columns(reader.fieldnames or [], mapping)
        for record in reader:
            yield _checked(record, reader.line_num, mapping, path.name)


def read_jsonl(path: Path, mapping: ColumnMapping) -> Iterator[ImportRow | InvalidRow]:
    """Rows of a JSON lines file (one object a line; blank lines skipped)."""
    with path.open(encoding="utf-8") as handle:
        for line, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except ValueError as error:
                yield InvalidRow(line, f"not JSON ({error})")
                continue
            if not isinstance(record, dict):
                yield InvalidRow(line, "expected a JSON object")
                continue
            yield _checked(record, line, mapping, path.name)


def read_cdnow(path: Path) -> Iterator[ImportRow | InvalidRow]:
    """CDNOW purchases: customer id, date YYYYMMDD, CDs bought, dollar value.

    Whitespace separated, as shipped with the `lifetimes` package; the
    sample file has an extra second column, which is ignored. Customer 00007
    becomes user `cdnow-00007` (the id as the file writes it); each line is
    one `purchase` action at midnight UTC of its date, its value the dollar
    amount, `{"cds": n}` as metadata.
    """
    with path.open(encoding="ascii") as handle:
        for line, text in enumerate(handle, start=1):
            fields = text.split()
            if not fields or not fields[0].isdigit():
                continue  # the header line, or a blank one
            if len(fields) == 5:
                del fields[1]
            if len(fields) != 4:
                yield InvalidRow(line, f"expected 4 columns, got {len(fields)}")
                continue
            customer, day, cds, dollars = fields
            record = {
                "user": customer,
                "day": day,
                "value": dollars,
                "metadata": {"cds": int(cds)} if cds.isdigit() else None,
            }
            yield _checked(
                record,
                line,
                CDNOW_MAPPING,
                f"cdnow:{path.name}",
            )


CDNOW_MAPPING = ColumnMapping(
    user_column="user",
    timestamp_column="day",
    value_column="value",
    metadata_column="metadata",
    action_type=CDNOW_ACTION_TYPE,
    timestamp_format="%Y%m%d",
    username_template=CDNOW_USERNAME_TEMPLATE,
)


def cdnow_path(name: str = "CDNOW_master.txt") -> Path:
    """The CDNOW file inside the installed `lifetimes` package.

    Found without importing the package (its import needs more than we do).
    """
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the lifetimes package is not installed (requirements/dev.txt)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / name
    if not path.exists():
        raise FileNotFoundError(f"{name} not found in the lifetimes package")
    return path


def _check_columns(columns: Iterable[str], mapping: ColumnMapping) -> None:
    needed = [mapping.user_column, mapping.timestamp_column]
    if mapping.action_type is None:
        needed.append(mapping.type_column)
    missing = [name for name in needed if name not in columns]
    if missing:
        raise InvalidRow(
            1, f"missing columns {missing}; the header has {list(columns)}"
        )


def _checked(
    record: dict, line: int, mapping: ColumnMapping, source: str
) -> ImportRow | InvalidRow:
    try:
        return row_from_record(record, line, mapping, source)
    except InvalidRow as invalid:
        return invalid


# --- Time shift -----------------------------------------------------------------


def latest_timestamp(rows: Iterable[ImportRow | InvalidRow]) -> datetime | None:
    """The latest action_timestamp of the valid rows (None when there are none)."""
    return max(
        (row.action_timestamp for row in rows if isinstance(row, ImportRow)),
        default=None,
    )


def shifted(row: ImportRow, shift: timedelta) -> ImportRow:
    return ImportRow(
        line=row.line,
        user=row.user,
        action_type=row.action_type,
        action_timestamp=row.action_timestamp + shift,
        value=row.value,
        metadata=row.metadata,
        event_id=row.event_id,
    )


# --- Writing --------------------------------------------------------------------


def import_rows(
    rows: Iterable[ImportRow | InvalidRow],
    *,
    user_lookup: str = "id",
    create_users: bool = False,
    publish: bool = False,
    skip_invalid: bool = False,
    shift: timedelta | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
) -> ImportResult:
    """Store `rows` in chunks; see the module docstring.

    `user_lookup` says what ImportRow.user holds: "id" (a user id) or
    "username". `create_users` creates missing usernames (not ids: ids
    belong to the database). An invalid row raises InvalidRow, unless
    `skip_invalid`, which counts it and notes the first problems.
    `on_chunk(n)` is called after each chunk with the rows it held.
    """
    if user_lookup not in ("id", "username"):
        raise ValueError(f"user_lookup must be 'id' or 'username', not {user_lookup!r}")
    if create_users and user_lookup != "username":
        raise ValueError("create_users needs user_lookup='username'")

    result = ImportResult()
    iterator = iter(rows)
    while chunk := list(islice(iterator, chunk_size)):
        result.rows += len(chunk)
        valid = []
        for row in chunk:
            if isinstance(row, InvalidRow):
                result.reject(row, skip=skip_invalid)
            else:
                valid.append(shifted(row, shift) if shift else row)

        valid = _check_future(valid, result, skip_invalid)
        users = _resolve_users(valid, user_lookup, create_users, result)
        known = []
        for row in valid:
            if row.user in users:
                known.append(row)
            else:
                unknown = InvalidRow(row.line, f"unknown user {row.user!r}")
                result.reject(unknown, skip=skip_invalid)
        inserted = _write_chunk(known, users, publish=publish)
        result.inserted += inserted
        result.existing += len(known) - inserted
        if on_chunk:
            on_chunk(len(chunk))
    return result


def _check_future(
    rows: list[ImportRow], result: ImportResult, skip_invalid: bool
) -> list[ImportRow]:
    limit = timezone.now() + FUTURE_TOLERANCE
    kept = []
    for row in rows:
        if row.action_timestamp <= limit:
            kept.append(row)
        else:
            problem = "action_timestamp: more than 5 minutes in the future"
            result.reject(InvalidRow(row.line, problem), skip=skip_invalid)
    return kept


def _resolve_users(
    rows: list[ImportRow], user_lookup: str, create_users: bool, result: ImportResult
) -> dict[str, int]:
    """{row.user: user id} for the users of `rows` that exist (or were created)."""
    user_model = get_user_model()
    wanted = {row.user for row in rows}
    if user_lookup == "id":
        ids = {int(text) for text in wanted if text.isdigit()}
        found = user_model.objects.filter(pk__in=ids).values_list("pk", flat=True)
        return {str(pk): pk for pk in found}

    def lookup() -> dict[str, int]:
        by_lower = dict(
            user_model.objects.annotate(lowered=Lower("username"))
            .filter(lowered__in={name.lower() for name in wanted})
            .values_list("lowered", "pk")
        )
        return {
            name: by_lower[name.lower()] for name in wanted if name.lower() in by_lower
        }

    users = lookup()
    missing = sorted(wanted - set(users))
    if missing and create_users:
        # Imported people sign in only after an operator sets a password.
        password = make_password(None)
        user_model.objects.bulk_create(
            [user_model(username=name, password=password) for name in missing],
            batch_size=1_000,
            ignore_conflicts=True,
        )
        users = lookup()
        result.users_created += len(set(missing) & set(users))
    return users


CREATE_STAGING_SQL = """
CREATE TEMPORARY TABLE IF NOT EXISTS import_actions_staging (
    user_id bigint, action_type varchar(64), action_timestamp timestamptz,
    value numeric(18, 2), metadata jsonb, event_id uuid, payload jsonb
) ON COMMIT DELETE ROWS
"""
INSERT_FROM_STAGING_SQL = """
WITH stored AS (
    INSERT INTO user_actions
        (user_id, action_type, action_timestamp, value, metadata, event_id, created_at)
    SELECT user_id, action_type, action_timestamp, value, metadata, event_id, %(now)s
    FROM import_actions_staging
    ON CONFLICT (event_id) DO NOTHING
    RETURNING event_id
), queued AS (
    INSERT INTO actions_outbox
        (event_id, topic, key, payload, created_at, attempts, available_at, last_error)
    SELECT staging.event_id, %(topic)s, staging.user_id::text, staging.payload,
           %(now)s, 0, %(now)s, ''
    FROM stored JOIN import_actions_staging AS staging USING (event_id)
    WHERE %(publish)s
)
SELECT count(*) FROM stored
"""


def _draft(row: ImportRow, user_id: int) -> ActionDraft:
    return ActionDraft(
        user_id=user_id,
        action_type=row.action_type,
        action_timestamp=row.action_timestamp,
        value=row.value,
        metadata=row.metadata,
        event_id=row.event_id,
    )


def _write_chunk(rows: list[ImportRow], users: dict[str, int], *, publish: bool) -> int:
    """Store `rows`; returns how many were new (the rest were stored before)."""
    if not rows:
        return 0
    now = timezone.now()
    topic = settings.KAFKA_TOPIC_USER_ACTIONS
    if connection.vendor != "postgresql":
        return _write_chunk_portable(rows, users, publish=publish, now=now, topic=topic)

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(CREATE_STAGING_SQL)
        columns = "user_id, action_type, action_timestamp, value, metadata, event_id"
        if publish:
            columns += ", payload"
        with cursor.cursor.copy(
            f"COPY import_actions_staging ({columns}) FROM STDIN"
        ) as copy:
            for row in rows:
                user_id = users[row.user]
                values = [
                    user_id,
                    row.action_type,
                    row.action_timestamp,
                    row.value,
                    encode_json(row.metadata),
                    row.event_id,
                ]
                if publish:
                    values.append(encode_json(_draft(row, user_id).payload()))
                copy.write_row(values)
        cursor.execute(
            INSERT_FROM_STAGING_SQL, {"now": now, "topic": topic, "publish": publish}
        )
        (inserted,) = cursor.fetchone()
    return inserted


def _write_chunk_portable(
    rows: list[ImportRow],
    users: dict[str, int],
    *,
    publish: bool,
    now: datetime,
    topic: str,
) -> int:
    with transaction.atomic():
        stored = set()
        event_ids = [row.event_id for row in rows]
        for start in range(0, len(event_ids), 900):
            stored.update(
                UserAction.objects.filter(
                    event_id__in=event_ids[start : start + 900]
                ).values_list("event_id", flat=True)
            )
        new = []
        for row in rows:
            if row.event_id not in stored:
                stored.add(row.event_id)
                new.append(_draft(row, users[row.user]))
        UserAction.objects.bulk_create(
            [
                UserAction(
                    user_id=draft.user_id,
                    action_type=draft.action_type,
                    action_timestamp=draft.action_timestamp,
                    value=draft.value,
                    metadata=draft.metadata,
                    event_id=draft.event_id,
                    created_at=now,
                )
                for draft in new
            ],
            batch_size=500,
        )
        if publish:
            OutboxEvent.objects.bulk_create(
                [
                    OutboxEvent(
                        event_id=draft.event_id,
                        topic=topic,
                        key=str(draft.user_id),
                        payload=draft.payload(),
                        created_at=now,
                        available_at=now,
                    )
                    for draft in new
                ],
                batch_size=500,
            )
    return len(new)


# --- CDNOW in one call ------------------------------------------------------------


def import_cdnow(
    path: Path | None = None,
    *,
    shift_to_now: bool = True,
    now: datetime | None = None,
    create_users: bool = True,
    publish: bool = False,
) -> ImportResult:
    """Import CDNOW (the master file by default), its last purchase moved to now."""
    rows = list(read_cdnow(path or cdnow_path()))
    latest = latest_timestamp(rows)
    shift = None
    if shift_to_now and latest is not None:
        shift = (now or timezone.now()) - latest
    return import_rows(
        rows,
        user_lookup="username",
        create_users=create_users,
        publish=publish,
        shift=shift,
    )
