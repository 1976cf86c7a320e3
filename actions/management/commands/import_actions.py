"""manage.py import_actions: backfill actions from a file (see actions.importer)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from actions.importer import (
    CDNOW_MAPPING,
    DEFAULT_CHUNK_SIZE,
    ColumnMapping,
    InvalidRow,
    cdnow_path,
    import_rows,
    latest_timestamp,
    read_cdnow,
    read_csv,
    read_jsonl,
)

FORMATS_BY_SUFFIX = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(
            block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b"")
        )


class Command(BaseCommand):
    help = (
        "Backfill user actions from a CSV (with a header line) or JSON lines file, "
        "or from the CDNOW data set with --preset cdnow. Rows are checked like API "
        "input except for their age; re-importing a file stores nothing twice."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file", nargs="?", help="CSV or JSON lines file")
        parser.add_argument(
            "--preset",
            choices=["cdnow"],
            help="cdnow: CDNOW_master.txt from the installed lifetimes package, "
            "customers as users cdnow-<id>, one purchase action a line",
        )
        parser.add_argument(
            "--format",
            choices=["csv", "jsonl", "cdnow"],
            help="default: from the file extension (.csv, .jsonl/.ndjson/.json)",
        )
        parser.add_argument("--user-column", default="user_id")
        parser.add_argument(
            "--user-lookup",
            choices=["id", "username"],
            help="what the user column holds (default: id, or username when "
            "--username-template or --create-users is given)",
        )
        parser.add_argument(
            "--username-template",
            default=None,
            help='username built from the user column, e.g. "shop-{}"',
        )
        parser.add_argument("--timestamp-column", default="action_timestamp")
        parser.add_argument(
            "--timestamp-format",
            help='strptime format (e.g. "%%Y%%m%%d") or "epoch"; default ISO 8601. '
            "Times without an offset are taken as UTC",
        )
        parser.add_argument("--value-column", default="value")
        parser.add_argument("--type-column", default="action_type")
        parser.add_argument("--action-type", help="one action type for every row")
        parser.add_argument("--metadata-column", default="metadata")
        parser.add_argument("--event-id-column", default="event_id")
        parser.add_argument(
            "--create-users",
            action="store_true",
            help="create missing users by username (with no usable password)",
        )
        parser.add_argument(
            "--publish",
            action="store_true",
            help="also queue each new action for Kafka (off: a backfill stays quiet)",
        )
        parser.add_argument(
            "--shift-to-now",
            action="store_true",
            help="move every timestamp so the latest is now, keeping their spacing",
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="skip invalid rows (counted) instead of stopping at the first",
        )
        parser.add_argument("--chunk-size", type=int, default=DEFAULT_CHUNK_SIZE)
        parser.add_argument(
            "--no-progress", action="store_true", help="no progress bar on stderr"
        )

    def handle(self, *args, **options) -> None:
        path, file_format, mapping = self._source(options)
        user_lookup = options["user_lookup"] or (
            "username"
            if file_format == "cdnow"
            or options["username_template"]
            or options["create_users"]
            else "id"
        )
        if options["create_users"] and user_lookup != "username":
            raise CommandError(
                "--create-users creates users by name: use --user-lookup username"
            )
        if options["chunk_size"] <= 0:
            raise CommandError("--chunk-size must be positive")

        def rows():
            if file_format == "cdnow":
                return read_cdnow(path)
            if file_format == "csv":
                return read_csv(path, mapping)
            return read_jsonl(path, mapping)

        started = time.monotonic()
        try:
            shift = None
            if options["shift_to_now"]:
                latest = latest_timestamp(rows())
                shift = timezone.now() - latest if latest is not None else None
            total = count_lines(path)
            with tqdm(
                total=total,
                unit="rows",
                file=sys.stderr,
                disable=options["no_progress"],
                desc=path.name,
            ) as progress:
                result = import_rows(
                    rows(),
                    user_lookup=user_lookup,
                    create_users=options["create_users"],
                    publish=options["publish"],
                    skip_invalid=options["skip_invalid"],
                    shift=shift,
                    chunk_size=options["chunk_size"],
                    on_chunk=progress.update,
                )
        except InvalidRow as invalid:
            raise CommandError(
                f"{path.name}: {invalid} (nothing after the last finished chunk was "
                "stored; fix the file and run again, or pass --skip-invalid)"
            ) from None

        for problem in result.problems:
            self.stderr.write(f"skipped {problem}")
        self.stdout.write(
            f"Imported {result.inserted} new actions from {path.name} in "
            f"{time.monotonic() - started:.1f}s: {result.existing} already stored, "
            f"{result.skipped} invalid rows skipped, {result.users_created} users "
            f"created{', queued for Kafka' if options['publish'] else ''}."
        )
        if shift is not None:
            self.stdout.write(f"Timestamps shifted by {shift}.")
        self.stdout.write(
            "Streaks are not updated by imports: run manage.py rebuild_streaks."
        )

    def _source(self, options) -> tuple[Path, str, ColumnMapping]:
        if options["preset"] == "cdnow":
            try:
                path = Path(options["file"]) if options["file"] else cdnow_path()
            except FileNotFoundError as error:
                raise CommandError(str(error)) from None
            return path, "cdnow", CDNOW_MAPPING

        if not options["file"]:
            raise CommandError("give a FILE, or --preset cdnow")
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        file_format = options["format"] or FORMATS_BY_SUFFIX.get(path.suffix.lower())
        if file_format is None:
            raise CommandError(
                f"{path.name}: unknown extension; pass --format csv or jsonl"
            )
        mapping = ColumnMapping(
            user_column=options["user_column"],
            timestamp_column=options["timestamp_column"],
            value_column=options["value_column"],
            type_column=options["type_column"],
            metadata_column=options["metadata_column"],
            event_id_column=options["event_id_column"],
            action_type=options["action_type"],
            timestamp_format=options["timestamp_format"],
            username_template=options["username_template"] or "{}",
        )
        if file_format == "cdnow":
            mapping = CDNOW_MAPPING
        return path, file_format, mapping
