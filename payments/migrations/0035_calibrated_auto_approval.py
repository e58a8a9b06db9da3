"""Auto-approval on by default for the rules whose candidates are only ever eligible on
evidence that stands on its own (engine.Candidate.eligible; calibrated on
bench/bench_match_quality.py, where every eligible first proposal was right on two seeds):
payer + exact amount, the payer's oldest invoices adding up, the customer's settlement discount
on an invoice named by its reference, a small shortfall on an invoice named by its reference,
more or less than is open on the one invoice a payer identified on its own names.
A rule a team switches to monitor again records what it would have done instead."""

from django.db import migrations

CALIBRATED = (
    "payer_exact",
    "payer_combination",
    "settlement_discount",
    "tolerance",
    "overpayment",
)


def switch_on(apps, schema_editor):
    MatchRule = apps.get_model("payments", "MatchRule")
    MatchRule.objects.filter(kind__in=CALIBRATED, auto_approve=False).update(
        auto_approve=True, monitor=False
    )


def switch_off(apps, schema_editor):
    MatchRule = apps.get_model("payments", "MatchRule")
    MatchRule.objects.filter(kind__in=CALIBRATED).update(auto_approve=False)
    MatchRule.objects.filter(kind="payer_exact").update(monitor=True)


class Migration(migrations.Migration):
    dependencies = [("payments", "0034_smartdebit_collection_ids")]

    operations = [migrations.RunPython(switch_on, switch_off)]
