from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "ccweb.accounts"
    label = "accounts"
    verbose_name = "Accounts and invite codes"

    def ready(self) -> None:
        # Imported for their side effect: they register themselves.
        from ccweb.accounts import checks, schema  # noqa: F401
