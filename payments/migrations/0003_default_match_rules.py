"""The default matching rules, in the order they are tried (admins can reorder/switch them)."""

from decimal import Decimal

from django.db import migrations

DEFAULT_RULES = [
    # Only an exact reference with the exact amount is safe enough to approve without a person.
    dict(name="Invoice reference in the payment", kind="reference", order=10, auto_approve=True),
    dict(name="Payer + exact amount of one open invoice", kind="payer_exact", order=20),
    dict(
        name="Payer + combination of open invoices",
        kind="payer_combination",
        order=30,
        max_invoices=6,
        max_candidates=40,
    ),
    dict(
        name="Small underpayment taken as settlement discount",
        kind="tolerance",
        order=40,
        tolerance_absolute=Decimal("1.00"),
        tolerance_percent=Decimal("0.500"),
        tolerance_action="discount",
    ),
    dict(name="Overpayment on account / partial payment", kind="overpayment", order=50),
]


def create_rules(apps, schema_editor):
    MatchRule = apps.get_model("payments", "MatchRule")
    if MatchRule.objects.exists():  # an admin already configured rules: leave them alone
        return
    for fields in DEFAULT_RULES:
        MatchRule.objects.create(**fields)


def remove_rules(apps, schema_editor):
    MatchRule = apps.get_model("payments", "MatchRule")
    for fields in DEFAULT_RULES:
        MatchRule.objects.filter(name=fields["name"], kind=fields["kind"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0002_plan_system_maker_line_unallocation"),
    ]

    operations = [migrations.RunPython(create_rules, remove_rules)]
