"""Learning who pays: a person's allocation teaches the matcher the payer's keys.

When a person makes or approves an allocation of a payment to a customer, the keys that
payment carries for its payer (the Stripe customer or GoCardless mandate id, the payer's email,
the payer's bank account and the bank statement's payer name, normalised) are remembered as PayerMappings of that customer,
with who confirmed them, so the next payment from that payer is identified (the engine reads
them: payments/matching/engine.resolve_customer and payers.identify). A key already mapped to
a customer is left as it is: a person removes a wrong one on the customer page
(payer_mapping_remove) and the next confirmed allocation teaches the right one. Allocations
made by a rule alone teach nothing, and neither do an API client's receipts (it named the
customer itself; the payer name is the customer's own, no payer's words). Every learned and removed key is in the audit log, written
in the transaction of the change.
"""

from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction

from payments.matching.payers import account_alias_key, alias_key, narrative_name
from payments.models import PayerMapping, Payment, Source
from staff.models import Role
from staff.services import audit_log, user_has_role


def payer_keys_of(payment: Payment) -> list[str]:
    """The keys a payment carries for its payer, as PayerMappings store them."""
    keys = []
    if payment.payer_account:
        keys.append(account_alias_key(payment.payer_account))
    if payment.payer_reference:
        keys.append(payment.payer_reference.strip())
    if payment.payer_email:
        keys.append(payment.payer_email.strip().lower())
    name = payment.payer_name or narrative_name(payment.description)
    key = alias_key(name) if name else ""
    if key:
        keys.append(key)
    return [k for k in dict.fromkeys(keys) if k and len(k) <= 254]


def payer_aliases_learn(*, payment: Payment, customer_id: int, person) -> list[PayerMapping]:
    """Remember the payment's payer keys for the customer a person allocated it to. Call it in
    the transaction of the allocation's approval."""
    if person is None or not customer_id or payment.source == Source.API:
        return []
    learned = []
    for key in payer_keys_of(payment):
        if PayerMapping.objects.filter(source=payment.source, payer_key=key).exists():
            continue
        try:
            with transaction.atomic():
                mapping = PayerMapping.objects.create(
                    source=payment.source,
                    payer_key=key,
                    customer_id=customer_id,
                    confirmed_by=person,
                )
        except IntegrityError:  # learned by a concurrent approval meanwhile: theirs stands
            continue
        audit_log(
            actor=person,
            action="payer_mapping.learn",
            obj=mapping,
            summary=f"{payment.get_source_display()} payer {key} learned as customer "
            f"#{customer_id} from the allocation of payment #{payment.pk}",
            after={"customer_id": customer_id, "payer_key": key, "payment": payment.pk},
        )
        learned.append(mapping)
    return learned


def payer_mapping_remove(*, mapping: PayerMapping, actor) -> None:
    """A person removes a remembered payer key (wrongly learned, or the payer changed hands)."""
    if not user_has_role(actor, Role.CLERK):
        raise PermissionDenied("Removing a payer alias needs the clerk role.")
    with transaction.atomic():
        locked = PayerMapping.objects.select_for_update().filter(pk=mapping.pk).first()
        if locked is None:
            return
        audit_log(
            actor=actor,
            action="payer_mapping.remove",
            obj=locked,
            summary=f"{locked.get_source_display()} payer {locked.payer_key} is no longer "
            f"taken as customer #{locked.customer_id}",
            before={"customer_id": locked.customer_id, "payer_key": locked.payer_key},
        )
        locked.delete()
