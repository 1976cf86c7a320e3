from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "ccweb.accounts"
    label = "accounts"
    verbose_name = "Accounts and invite codes"
