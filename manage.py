#!/usr/bin/env python
"""Django's command-line utility for ccweb."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccweb.settings")
    from django.core.management import execute_from_command_line

    from ccweb.config import run_or_exit

    run_or_exit(lambda: execute_from_command_line(sys.argv))


if __name__ == "__main__":
    main()
