"""Payer aliases a customer is known by (payer mappings, learned or confirmed): removal."""

from django.contrib import messages
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from payments.models import PayerMapping
from payments.services.payer_learning import payer_mapping_remove
from staff.views import clerk_required, get_or_404


@require_POST
@clerk_required
def payer_mapping_delete(request, mapping_id):
    """Forget one payer key (the customer page lists them); back to that customer's page."""
    mapping = get_or_404(PayerMapping.objects.all(), pk=mapping_id)
    payer_mapping_remove(mapping=mapping, actor=request.user)
    messages.success(
        request, f"Payments from {mapping.payer_key} are no longer taken as this customer's."
    )
    return redirect("ledger:customer", customer_id=mapping.customer_id)
