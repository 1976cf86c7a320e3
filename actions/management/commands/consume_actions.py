"""manage.py consume_actions: print the actions topic, one JSON line a message."""

from __future__ import annotations

import contextlib
import sys
import time
import uuid

import orjson
from confluent_kafka import Consumer, KafkaError
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

BATCH = 1_000


def message_line(message) -> bytes:
    """`{"key", "partition", "offset", "value"}` as UTF-8, the value decoded.

    A value that is JSON is embedded as it is, only checked (orjson does
    that several times faster than the json module, and this is the hot
    loop); any other value is printed as a string. orjson writes the whole
    line in one call, taking the checked value as a ready-made fragment.
    """
    key = message.key()
    value = message.value()
    if value is None:
        embedded = None
    else:
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError:
            embedded = value.decode("utf-8", "replace")
        else:
            if b"\n" in value or b"\r" in value:
                # In valid JSON these can only be whitespace between tokens:
                # spaces keep the document and one message on one line.
                value = value.replace(b"\n", b" ").replace(b"\r", b" ")
            embedded = orjson.Fragment(value)
    line = {
        "key": None if key is None else key.decode("utf-8", "replace"),
        "partition": message.partition(),
        "offset": message.offset(),
        "value": embedded,
    }
    return orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE)


class Command(BaseCommand):
    help = (
        "Print the messages of the user actions topic, one JSON line each: key, "
        "partition, offset and the decoded value."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--group-id",
            help="consumer group; default: a new throw-away group, so watching "
            "never takes messages from real consumers",
        )
        parser.add_argument(
            "--from-beginning",
            action="store_true",
            help="start at the oldest message when the group has no offset",
        )
        parser.add_argument(
            "--max-messages", type=int, help="stop after printing this many"
        )
        parser.add_argument(
            "--timeout",
            type=float,
            help="stop after this many seconds without a message (default: never)",
        )
        parser.add_argument(
            "--topic", default=None, help="default: KAFKA_TOPIC_USER_ACTIONS"
        )

    def handle(self, *args, **options) -> None:
        if not settings.KAFKA_BROKER:
            raise CommandError("KAFKA_BROKER is not set: there is no broker to read")
        limit = options["max_messages"]
        if limit is not None and limit <= 0:
            raise CommandError("--max-messages must be positive")
        idle_limit = options["timeout"]

        consumer = Consumer(
            {
                "bootstrap.servers": settings.KAFKA_BROKER,
                "group.id": options["group_id"]
                or f"consume-actions-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest"
                if options["from_beginning"]
                else "latest",
                "enable.auto.commit": bool(options["group_id"]),
            }
        )
        consumer.subscribe([options["topic"] or settings.KAFKA_TOPIC_USER_ACTIONS])
        write = self._writer(options)
        printed = 0
        last_message = time.monotonic()
        try:
            while limit is None or printed < limit:
                wanted = BATCH if limit is None else min(BATCH, limit - printed)
                messages = consumer.consume(num_messages=wanted, timeout=0.5)
                lines = []
                for message in messages:
                    error = message.error()
                    if error is None:
                        lines.append(message_line(message))
                    elif error.code() != KafkaError._PARTITION_EOF:
                        self.stderr.write(f"consume_actions: {error}")
                if lines:
                    write(b"".join(lines))
                    printed += len(lines)
                    last_message = time.monotonic()
                elif (
                    idle_limit is not None
                    and time.monotonic() - last_message >= idle_limit
                ):
                    break
        except (KeyboardInterrupt, BrokenPipeError):
            # Ctrl-C, or the reader went away (`consume_actions | head`).
            pass
        finally:
            consumer.close()
            with contextlib.suppress(BrokenPipeError):
                self.stdout.flush()
                sys.stdout.flush()

    def _writer(self, options):
        """Write bytes straight to stdout; text to a stream a caller passed."""
        if options.get("stdout") is None:
            return sys.stdout.buffer.write
        return lambda chunk: self.stdout.write(chunk.decode(), ending="")
