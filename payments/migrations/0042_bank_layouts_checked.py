"""Refresh the ready CSV layouts after checking them against the banks' exports as published
(payments/sources/bank_layouts.py): Monzo's and Wise's narrative column, Revolut Business's
timestamps and State, AIB's renamed Description and two-digit years."""

from django.db import migrations


def forwards(apps, schema_editor):
    from payments.sources.bank_layouts import layouts_install

    layouts_install(apps.get_model("payments", "ImportFormat"))


class Migration(migrations.Migration):
    dependencies = [("payments", "0041_other_payment_kind")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
