"""Celery tasks of the segments app: the RFM batch, nightly and at start-up.

The nightly schedule is a django-celery-beat entry (02:00 UTC, created by
migration segments 0003, editable in the admin). The start-up run is
enqueued from `beat_init`, which fires once in the one beat process of a
deployment (also when beat is embedded in a worker with `--beat`), never
once per worker; the batch's single-flight lock covers any overlap with a
nightly run.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import beat_init
from django.conf import settings

from segments.rfm import compute_rfm_and_update_segments, parse_as_of

logger = logging.getLogger(__name__)

# Leaves the worker, web and database time to settle after a deployment.
STARTUP_DELAY_SECONDS = 60
# A start-up run still queued this long after its moment is not worth doing.
STARTUP_EXPIRES_SECONDS = 3600


@shared_task(
    name="segments.compute_rfm",
    soft_time_limit=settings.RFM_TIME_LIMIT_SECONDS,
    # The hard limit kills a worker stuck past the soft one; the database
    # then rolls the batch back and releases its lock on its own.
    time_limit=settings.RFM_TIME_LIMIT_SECONDS + 60,
    ignore_result=True,
)
def compute_rfm(as_of: str | None = None) -> dict[str, Any]:
    """Recompute every user's segment; `as_of` is an ISO 8601 moment or None."""
    moment = parse_as_of(as_of) if as_of else None

    try:
        summary = compute_rfm_and_update_segments(moment)
    except SoftTimeLimitExceeded:
        logger.error(
            "RFM run stopped at its soft time limit of %ss and was rolled back; "
            "raise RFM_TIME_LIMIT_SECONDS or look at docs/rfm.md (tuning)",
            settings.RFM_TIME_LIMIT_SECONDS,
        )
        raise
    except Exception:
        logger.exception("RFM run failed (as_of=%s); segments are unchanged", as_of)
        raise

    return summary.as_dict()


@beat_init.connect
def enqueue_startup_run(sender: object = None, **kwargs: object) -> None:
    """Run the batch shortly after beat starts, so segments are fresh."""
    try:
        compute_rfm.apply_async(
            countdown=STARTUP_DELAY_SECONDS, expires=STARTUP_EXPIRES_SECONDS
        )
    except Exception:
        # Beat must keep scheduling even when the broker is briefly away;
        # the nightly run still comes.
        logger.warning("could not enqueue the start-up RFM run", exc_info=True)
        return
    logger.info("start-up RFM run enqueued in %ss", STARTUP_DELAY_SECONDS)
