"""R9: the RFM batch on real transactions (CDNOW) against pandas.

CDNOW holds 69,659 purchases of 23,570 customers of an online CD shop,
January 1997 to June 1998 (tests/data/README.md). The purchases are shifted
in time so that the last one falls on the day before `as_of`, loaded as
user actions, and the batch's recency, frequency and monetary value are
compared, customer by customer, with a computation written here in pandas.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection

from segments.models import UserSegment
from segments.rfm import compute_rfm_and_update_segments

pytestmark = pytest.mark.django_db

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "cdnow_sample.txt"
# The last purchase of the data set is on 1998-06-30; it lands on the day
# before AS_OF. Midnight keeps the window's edge between two days, so a
# purchase is in the window exactly when its (shifted) date is.
AS_OF = datetime(2026, 7, 1, 0, 0, tzinfo=UTC)
SHIFT = AS_OF.date() - timedelta(days=1) - datetime(1998, 6, 30).date()
# Wide enough for all 546 days of the full file.
WHOLE_HISTORY_DAYS = 600


def full_file() -> Path:
    # The package's own loader needs pkg_resources, so find the file instead.
    spec = importlib.util.find_spec("lifetimes")
    assert spec and spec.submodule_search_locations, "lifetimes is not installed"
    return Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_master.txt"


def read_purchases(path: Path) -> pd.DataFrame:
    purchases = pd.read_csv(
        path,
        sep=r"\s+",
        header=0,
        names=["customer", "date", "cds", "dollars"],
        dtype={"customer": int, "date": str, "cds": int, "dollars": str},
    )
    purchases["date"] = pd.to_datetime(purchases["date"], format="%Y%m%d") + SHIFT
    # Exact cents, from the text, not through binary floats.
    purchases["cents"] = purchases["dollars"].map(lambda text: int(Decimal(text) * 100))
    return purchases


def load_into_database(purchases: pd.DataFrame) -> dict[int, int]:
    """Users and actions for the purchases; customer id to user id."""
    user_model = get_user_model()
    unusable = make_password(None)
    customers = sorted(purchases["customer"].unique())
    user_model.objects.bulk_create(
        [user_model(username=f"cdnow-{c:05d}", password=unusable) for c in customers],
        batch_size=5000,
    )
    user_ids = {
        int(name.removeprefix("cdnow-")): pk
        for name, pk in user_model.objects.filter(
            username__startswith="cdnow-"
        ).values_list("username", "pk")
    }

    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(
            "COPY user_actions (user_id, action_type, action_timestamp, value, "
            "metadata, event_id, created_at) "
            "FROM STDIN"
        ) as copy,
    ):
        for number, row in enumerate(purchases.itertuples(index=False)):
            # Noon plus a few seconds: several purchases a day stay apart.
            moment = row.date.to_pydatetime().replace(tzinfo=UTC) + timedelta(
                hours=12, seconds=number % 3600
            )
            copy.write_row(
                (
                    user_ids[row.customer],
                    "purchase",
                    moment,
                    Decimal(row.dollars),
                    f'{{"cds": {row.cds}}}',
                    f"00000000-0000-4000-8000-{number:012d}",
                    AS_OF,
                )
            )
    return user_ids


def pandas_rfm(purchases: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Recency, frequency, monetary (cents) per customer, the pandas way."""
    window_start = pd.Timestamp(AS_OF.date()) - pd.Timedelta(days=window_days)
    recent = purchases[purchases["date"] >= window_start]
    rfm = recent.groupby("customer").agg(
        last=("date", "max"), frequency=("date", "size"), cents=("cents", "sum")
    )
    rfm["recency"] = (pd.Timestamp(AS_OF.date()) - rfm["last"]).dt.days
    return rfm[["recency", "frequency", "cents"]]


def pandas_scores_and_groups(rfm: pd.DataFrame) -> pd.DataFrame:
    """Scores: 1 + floor(5 x share of customers with a strictly worse value)."""
    active = len(rfm)

    def score(ranks: pd.Series) -> pd.Series:
        return 1 + (5 * (ranks.astype(int) - 1)) // active

    scored = pd.DataFrame(index=rfm.index)
    scored["r"] = score(rfm["recency"].rank(method="min", ascending=False))
    scored["f"] = score(rfm["frequency"].rank(method="min"))
    scored["m"] = score(rfm["cents"].rank(method="min"))
    conditions = [
        (rfm["recency"] <= recency)
        & (rfm["frequency"] >= frequency)
        & (rfm["cents"] >= round(monetary * 100))
        for _, recency, frequency, monetary in settings.RFM_RULES
    ]
    groups = [group for group, *_ in settings.RFM_RULES]
    scored["group"] = np.select(conditions, groups, default="Low")
    return scored


def database_rfm(user_ids: dict[int, int]) -> pd.DataFrame:
    customer_of = {pk: customer for customer, pk in user_ids.items()}
    rows = UserSegment.objects.filter(frequency__isnull=False).values_list(
        "user_id", "recency_days", "frequency", "monetary"
    )
    return pd.DataFrame(
        [
            (customer_of[pk], recency, frequency, int(monetary * 100))
            for pk, recency, frequency, monetary in rows
        ],
        columns=["customer", "recency", "frequency", "cents"],
    ).set_index("customer")


@pytest.fixture
def whole_history(settings):
    settings.RFM_WINDOW_DAYS = WHOLE_HISTORY_DAYS
    purchases = read_purchases(full_file())
    user_ids = load_into_database(purchases)
    return purchases, user_ids


def test_it_matches_pandas_for_every_cdnow_customer(whole_history):
    purchases, user_ids = whole_history
    expected = pandas_rfm(purchases, WHOLE_HISTORY_DAYS)

    compute_rfm_and_update_segments(AS_OF)

    actual = database_rfm(user_ids)
    assert len(expected) == 23_570
    pd.testing.assert_frame_equal(
        actual.sort_index(), expected.sort_index(), check_dtype=False
    )


def test_it_scores_and_groups_cdnow_customers_like_pandas(whole_history):
    purchases, user_ids = whole_history
    expected = pandas_scores_and_groups(pandas_rfm(purchases, WHOLE_HISTORY_DAYS))

    compute_rfm_and_update_segments(AS_OF)

    customer_of = {pk: customer for customer, pk in user_ids.items()}
    rows = UserSegment.objects.values_list(
        "user_id", "r_score", "f_score", "m_score", "rfm_group"
    )
    actual = pd.DataFrame(
        [(customer_of[pk], *rest) for pk, *rest in rows],
        columns=["customer", "r", "f", "m", "group"],
    ).set_index("customer")
    pd.testing.assert_frame_equal(
        actual.sort_index(), expected.sort_index(), check_dtype=False
    )


def test_it_matches_pandas_on_the_sample_in_the_default_window():
    purchases = read_purchases(SAMPLE)
    user_ids = load_into_database(purchases)
    expected = pandas_rfm(purchases, settings.RFM_WINDOW_DAYS)

    compute_rfm_and_update_segments(AS_OF)

    actual = database_rfm(user_ids)
    assert 0 < len(expected) < purchases["customer"].nunique()
    pd.testing.assert_frame_equal(
        actual.sort_index(), expected.sort_index(), check_dtype=False
    )
