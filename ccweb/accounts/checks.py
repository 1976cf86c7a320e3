"""Start-up checks of the accounts app's settings."""

from __future__ import annotations

import re

from django.conf import settings
from django.core import checks

RATE_FORMAT = re.compile(r"^\d+/(s|sec|second|m|min|minute|h|hour|d|day)$")
RATE_VARIABLES = {"auth": "THROTTLE_AUTH_RATE", "invite": "THROTTLE_INVITE_RATE"}


@checks.register(checks.Tags.security)
def check_throttle_rates(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """A malformed rate would otherwise fail every auth request with a 500."""
    rates = settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {})
    problems = []
    for scope, variable in RATE_VARIABLES.items():
        rate = rates.get(scope)
        if rate is None or not RATE_FORMAT.match(str(rate)):
            problems.append(
                checks.Error(
                    f"{variable}: throttle rate {rate!r} for scope {scope!r} "
                    "is not of the form N/s, N/min, N/hour or N/day.",
                    hint="For example 20/min.",
                    id="accounts.E001",
                )
            )
    return problems
