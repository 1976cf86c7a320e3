"""Run the RFM batch now, in this process, and print its summary."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from segments.rfm import compute_rfm_and_update_segments, parse_as_of


class Command(BaseCommand):
    help = (
        "Recompute every user's RFM segment now (the nightly batch), as of now "
        "or --as-of, and print the summary. Skips when another run is going on."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--as-of",
            help="compute as of this ISO 8601 moment (UTC when no offset), "
            "e.g. to replay a past night; default now",
        )
        parser.add_argument(
            "--json", action="store_true", help="print the summary as JSON"
        )

    def handle(self, *args, **options) -> None:
        as_of = None
        if options["as_of"]:
            try:
                as_of = parse_as_of(options["as_of"])
            except ValueError as exc:
                raise CommandError(f"--as-of: {exc}") from None

        summary = compute_rfm_and_update_segments(as_of)

        if options["json"]:
            self.stdout.write(json.dumps(summary.as_dict()))
        else:
            self.stdout.write(summary.describe())
