"""SmartDebit collections take the one external id both the portal's report and SmartDebit's
API now give them (sd:<payer reference>|<debit date>|<amount>), so a collection already here
is recognised whichever way it arrives next. Where two stored payments already share it (the
same collection imported both ways before this change) the earlier one takes it and the later
keeps its old id: which of them is the true second collection is a person's call."""

from datetime import UTC

from django.db import migrations


def forwards(apps, schema_editor):
    from core.money import MoneyError, exponent
    from payments.sources.statement_rows import smartdebit_external_id

    payment_model = apps.get_model("payments", "Payment")
    rows = (
        payment_model.objects.filter(source="smartdebit")
        .exclude(payer_reference="")
        .exclude(external_id__startswith="sd:")
        .order_by("pk")
    )
    taken = set(
        payment_model.objects.filter(
            source="smartdebit", external_id__startswith="sd:"
        ).values_list("external_id", flat=True)
    )
    for payment in rows.iterator():
        try:
            places = exponent(payment.currency)
        except MoneyError:
            continue
        booked = payment.received_at.astimezone(UTC).date()
        new_id = smartdebit_external_id(payment.payer_reference, booked, payment.amount, places, 1)
        if new_id in taken:
            continue
        taken.add(new_id)
        payment_model.objects.filter(pk=payment.pk).update(external_id=new_id)


class Migration(migrations.Migration):
    dependencies = [("payments", "0033_customer_groups")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
