"""Celery tasks of the actions app."""

from __future__ import annotations

from celery import shared_task

from actions import relay

# Beat starts a sweep every few seconds; one sweep stops well before the
# next would pile up behind it.
SWEEP_MAX_SECONDS = 20


@shared_task(
    name="actions.relay_outbox",
    ignore_result=True,
    soft_time_limit=SWEEP_MAX_SECONDS + 30,
    time_limit=SWEEP_MAX_SECONDS + 60,
)
def relay_outbox() -> dict:
    """Publish the due outbox events (relays running side by side split them)."""
    result = relay.sweep(max_seconds=SWEEP_MAX_SECONDS)
    return {
        "claimed": result.claimed,
        "published": result.published,
        "failed": result.failed,
    }
