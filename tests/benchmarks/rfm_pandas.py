"""P1's comparison: the RFM batch written the pandas way.

What a team would build without set-based SQL: read the window's actions
into a data frame, group, score, apply the rules, write every user's row
back. Two ways to move the rows:

- "typical": `pandas.read_sql` in, `executemany` of the upsert out, the
  way such jobs are usually written;
- "copy": COPY to CSV and `read_csv` in, COPY into a temporary table and
  one upsert out, pandas at its best against PostgreSQL.
"""

from __future__ import annotations

import io
import time
import warnings
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from psycopg import sql

from segments.models import RfmGroup

VALUES_UPSERT = """
INSERT INTO user_segments (
    user_id, rfm_group, recency_days, frequency, monetary,
    r_score, f_score, m_score, risk_profile, last_updated
)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'Unknown', now())
ON CONFLICT (user_id) DO UPDATE SET
    rfm_group = excluded.rfm_group,
    recency_days = excluded.recency_days,
    frequency = excluded.frequency,
    monetary = excluded.monetary,
    r_score = excluded.r_score,
    f_score = excluded.f_score,
    m_score = excluded.m_score,
    last_updated = excluded.last_updated
"""
WRITE_BACK = """
INSERT INTO user_segments (
    user_id, rfm_group, risk_profile, recency_days, frequency, monetary,
    r_score, f_score, m_score, last_updated
)
SELECT user_id, rfm_group, 'Unknown', recency_days, frequency, monetary,
       r_score, f_score, m_score, now()
FROM pandas_segments
ON CONFLICT (user_id) DO UPDATE SET
    rfm_group = excluded.rfm_group,
    recency_days = excluded.recency_days,
    frequency = excluded.frequency,
    monetary = excluded.monetary,
    r_score = excluded.r_score,
    f_score = excluded.f_score,
    m_score = excluded.m_score,
    last_updated = excluded.last_updated
"""


def _copy_out(query: sql.Composable) -> io.BytesIO:
    buffer = io.BytesIO()
    with connection.cursor() as cursor:
        statement = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv)").format(query)
        with cursor.cursor.copy(statement) as copy:
            for block in copy:
                buffer.write(block)
    buffer.seek(0)
    return buffer


def read_window(as_of: datetime, window_days: int) -> pd.DataFrame:
    query = sql.SQL(
        "SELECT user_id, action_timestamp, value FROM user_actions "
        "WHERE action_timestamp >= {} AND action_timestamp <= {}"
    ).format(sql.Literal(as_of - timedelta(days=window_days)), sql.Literal(as_of))
    actions = pd.read_csv(
        _copy_out(query),
        names=["user_id", "at", "value"],
        dtype={"user_id": "int64", "at": str, "value": "float64"},
    )
    actions["at"] = pd.to_datetime(actions["at"], format="ISO8601", utc=True)
    return actions


def read_sql(query: str, params: dict | None = None) -> pd.DataFrame:
    with warnings.catch_warnings():
        # pandas prefers SQLAlchemy, but reads a DB-API connection all right.
        warnings.simplefilter("ignore", UserWarning)
        return pd.read_sql(query, connection.connection, params=params)


def read_window_typical(as_of: datetime, window_days: int) -> pd.DataFrame:
    actions = read_sql(
        "SELECT user_id, action_timestamp AS at, value FROM user_actions "
        "WHERE action_timestamp >= %(start)s AND action_timestamp <= %(end)s",
        {"start": as_of - timedelta(days=window_days), "end": as_of},
    )
    actions["at"] = pd.to_datetime(actions["at"], utc=True)
    actions["value"] = actions["value"].astype("float64")
    return actions


def score(values: pd.Series, ascending: bool) -> pd.Series:
    ranks = values.rank(method="min", ascending=ascending).astype("int64")
    return 1 + (5 * (ranks - 1)) // len(values)


def segments(actions: pd.DataFrame, users: pd.Index, as_of: datetime) -> pd.DataFrame:
    per_user = actions.groupby("user_id").agg(
        last=("at", "max"), frequency=("at", "size"), monetary=("value", "sum")
    )
    as_of_day = pd.Timestamp(as_of.date(), tz="UTC")
    per_user["recency_days"] = (as_of_day - per_user["last"].dt.floor("D")).dt.days
    per_user["monetary"] = per_user["monetary"].round(2)
    per_user["r_score"] = score(per_user["recency_days"], ascending=False)
    per_user["f_score"] = score(per_user["frequency"], ascending=True)
    per_user["m_score"] = score(per_user["monetary"], ascending=True)
    conditions = [
        (per_user["recency_days"] <= recency)
        & (per_user["frequency"] >= frequency)
        & (per_user["monetary"] >= monetary)
        for _, recency, frequency, monetary in settings.RFM_RULES
    ]
    groups = [group for group, *_ in settings.RFM_RULES]
    per_user["rfm_group"] = np.select(conditions, groups, default="Low")

    everyone = per_user.reindex(users)
    everyone["rfm_group"] = everyone["rfm_group"].fillna("Low")
    for column in ("recency_days", "frequency", "r_score", "f_score", "m_score"):
        everyone[column] = everyone[column].astype("Int64")
    everyone.index.name = "user_id"
    return everyone[
        [
            "rfm_group",
            "recency_days",
            "frequency",
            "monetary",
            "r_score",
            "f_score",
            "m_score",
        ]
    ]


def write_back(rows: pd.DataFrame) -> None:
    buffer = io.StringIO()
    rows.to_csv(buffer, header=False)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMPORARY TABLE pandas_segments (user_id bigint, "
            "rfm_group varchar(32), recency_days integer, frequency integer, "
            "monetary numeric(20, 2), r_score smallint, f_score smallint, "
            "m_score smallint) ON COMMIT DROP"
        )
        with cursor.cursor.copy(
            "COPY pandas_segments FROM STDIN WITH (FORMAT csv)"
        ) as copy:
            copy.write(buffer.getvalue())
        cursor.execute(WRITE_BACK)


def write_back_typical(rows: pd.DataFrame) -> None:
    values = VALUES_UPSERT.replace("pandas_segments", "user_segments")
    records = [
        tuple(_plain(value) for value in record)
        for record in rows.itertuples(name=None)
    ]
    with connection.cursor() as cursor:
        cursor.executemany(values, records)


def _plain(value: object) -> object:
    """A value psycopg can send: None for missing ones, no numpy scalars."""
    if pd.isna(value):
        return None
    return value.item() if hasattr(value, "item") else value


def run_pandas_rfm(
    as_of: datetime, window_days: int, variant: str
) -> tuple[float, dict[str, int]]:
    """Seconds taken and users per group; `variant` is "typical" or "copy"."""
    started = time.monotonic()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")
        if variant == "copy":
            actions = read_window(as_of, window_days)
        else:
            actions = read_window_typical(as_of, window_days)
        user_ids = read_sql("SELECT id FROM accounts_user")
        rows = segments(actions, pd.Index(user_ids["id"]), as_of)
        if variant == "copy":
            write_back(rows)
        else:
            write_back_typical(rows)
    seconds = time.monotonic() - started

    counts = rows["rfm_group"].value_counts()
    groups = {group: int(counts.get(group, 0)) for group in RfmGroup.values}
    return seconds, groups
