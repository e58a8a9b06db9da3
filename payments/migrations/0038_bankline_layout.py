"""Install the ready NatWest Bankline CSV layout (payments/sources/bank_layouts.py)."""

from django.db import migrations


def forwards(apps, schema_editor):
    from payments.sources.bank_layouts import layouts_install

    layouts_install(apps.get_model("payments", "ImportFormat"))


class Migration(migrations.Migration):
    dependencies = [("payments", "0037_plan_fx_command")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
