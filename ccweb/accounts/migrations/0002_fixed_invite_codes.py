"""The invite codes the operator hands out from day one: unlimited, active."""

from django.db import migrations

FIXED_CODES = ("5882", "6969", "6974")


def create_fixed_codes(apps, schema_editor):
    InviteCode = apps.get_model("accounts", "InviteCode")
    for code in FIXED_CODES:
        InviteCode.objects.get_or_create(
            code=code, defaults={"is_active": True, "note": "fixed code"}
        )


def remove_fixed_codes(apps, schema_editor):
    InviteCode = apps.get_model("accounts", "InviteCode")
    InviteCode.objects.filter(code__in=FIXED_CODES, use_count=0).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_fixed_codes, remove_fixed_codes)]
