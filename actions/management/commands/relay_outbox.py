"""manage.py relay_outbox: publish outbox events to Kafka (see actions.relay)."""

from __future__ import annotations

import logging
import signal
import threading

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection

from actions import relay
from actions.kafka import publishing_enabled

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Publish due outbox events to Kafka, in a loop until stopped (SIGTERM or "
        "Ctrl-C finish the current batch first), or one sweep with --once. "
        "Several relays may run side by side; they split the rows."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--once", action="store_true", help="sweep until nothing is due, then exit"
        )
        parser.add_argument(
            "--batch-size", type=int, default=None, help="rows claimed at a time"
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help="batches in flight at once, each with its own connection and "
            "producer: one waits for Kafka while the next is read (default 2)",
        )
        parser.add_argument(
            "--interval",
            type=float,
            default=1.0,
            help="seconds to wait when nothing is due (default 1)",
        )

    def handle(self, *args, **options) -> None:
        if not publishing_enabled():
            raise CommandError(
                "KAFKA_BROKER is not set: there is no broker to relay to"
            )
        if options["once"]:
            result = relay.sweep(batch_size=options["batch_size"])
            self.stdout.write(
                f"Published {result.published} events; {result.failed} failed and "
                "wait for a retry."
            )
            return

        stop = threading.Event()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, lambda *_: stop.set())
        workers = [
            threading.Thread(
                target=self._loop, args=(stop, options), name=f"relay-{number}"
            )
            for number in range(options["workers"])
        ]
        logger.info("relay started with %d workers", len(workers))
        for worker in workers:
            worker.start()
        # Join with a timeout: a plain join would not let signals through.
        while any(worker.is_alive() for worker in workers):
            for worker in workers:
                worker.join(timeout=0.5)
        logger.info("relay stopped")

    def _loop(self, stop: threading.Event, options) -> None:
        try:
            while not stop.is_set():
                try:
                    result = relay.sweep(batch_size=options["batch_size"])
                except DatabaseError as error:
                    # The database will come back; the relay must still be here.
                    logger.warning("relay: database unavailable, retrying: %s", error)
                    connection.close()
                    stop.wait(max(options["interval"], 1.0))
                    continue
                if not result.claimed or result.failed:
                    stop.wait(options["interval"])
        finally:
            connection.close()
