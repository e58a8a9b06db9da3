"""Refunds and plans share one maker-checker mechanism (staff/maker_checker.py): a refund's
requester becomes its maker (whoever last changed it) and its approver is stored like a plan's."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("payments", "0014_webhook_event_failed"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="refund", name="refund_approver_is_not_requester"),
        migrations.RenameField(model_name="refund", old_name="requested_by", new_name="maker"),
        migrations.RenameField(model_name="refund", old_name="approved_by", new_name="approver"),
        migrations.AddField(
            model_name="refund",
            name="approved_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="allocationplan",
            name="approver",
            field=models.ForeignKey(
                blank=True,
                help_text="The second person; never the maker.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="allocationplan",
            name="maker",
            field=models.ForeignKey(
                blank=True,
                help_text="Who last changed what will be posted (empty: the system).",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="refund",
            name="approver",
            field=models.ForeignKey(
                blank=True,
                help_text="The second person; never the maker.",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AlterField(
            model_name="refund",
            name="maker",
            field=models.ForeignKey(
                blank=True,
                help_text="Who last changed what will be posted (empty: the system).",
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddConstraint(
            model_name="refund",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("approver__isnull", True),
                    models.Q(("approver", models.F("maker")), _negated=True),
                    _connector="OR",
                ),
                name="refund_approver_is_not_maker",
            ),
        ),
    ]
