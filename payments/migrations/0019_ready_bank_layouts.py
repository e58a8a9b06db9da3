"""Install the ready CSV layouts of UK and Irish banks (payments/sources/bank_layouts.py)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from payments.sources.bank_layouts import layouts_install

    layouts_install(apps.get_model("payments", "ImportFormat"))


class Migration(migrations.Migration):
    dependencies = [("payments", "0018_payment_bank_reference_indexes")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
