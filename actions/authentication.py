"""JWT authentication that loads the caller's row only when it is needed.

Recording an action for oneself needs nothing of the caller but their id,
and the insert itself checks that the account exists and is active (see
`actions.store`): loading the row first would cost a query on every
request of the busiest endpoint. The token is checked exactly as
JWTAuthentication checks it (signature, expiry, type); the row is loaded,
with JWTAuthentication's own checks, as soon as anything but the id is
asked for (staff status, permissions, any other attribute).
"""

from __future__ import annotations

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.drainage import set_override
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from ccweb.authentication import CachedJWTAuthentication


class TokenCaller:
    """The caller named by a valid access token; the row is loaded on demand."""

    is_authenticated = True
    is_anonymous = False

    def __init__(self, token, authentication: JWTAuthentication, user_id: int) -> None:
        self.id = self.pk = user_id
        self._token = token
        self._authentication = authentication
        self._row = None

    @property
    def loaded(self) -> bool:
        """True once the row was read and passed the account checks."""
        return self._row is not None

    @property
    def row(self):
        if self._row is None:
            # Raises AuthenticationFailed (401) for a missing or inactive user.
            self._row = self._authentication.get_user(self._token)
        return self._row

    @property
    def is_staff(self) -> bool:
        return self.row.is_staff

    def has_perm(self, perm: str, obj=None) -> bool:
        return self.row.has_perm(perm, obj)

    def __getattr__(self, name: str):
        return getattr(self.row, name)


class DeferredUserJWTAuthentication(CachedJWTAuthentication):
    def authenticate(self, request):
        header = self.get_header(request)
        raw_token = self.get_raw_token(header) if header is not None else None
        if raw_token is None:
            return None
        token = self.get_validated_token(raw_token)

        claimed = str(token.get(jwt_settings.USER_ID_CLAIM, ""))
        # Revocation on password change compares the stored hash: load then.
        deferrable = jwt_settings.USER_ID_FIELD == "id" and not getattr(
            jwt_settings, "CHECK_REVOKE_TOKEN", False
        )
        if deferrable and claimed.isdigit():
            return TokenCaller(token, self, int(claimed)), token
        return self.get_user(token), token


class DeferredUserJWTScheme(SimpleJWTScheme):
    """The same bearer scheme in the OpenAPI document."""

    target_class = "actions.authentication.DeferredUserJWTAuthentication"


# Every JWT class publishes the one "jwtAuth" scheme on purpose: same token.
set_override(DeferredUserJWTAuthentication, "suppress_collision_warning", True)
