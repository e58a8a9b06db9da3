"""Invoices AIQ has but the mirror does not yet (issue 14.5): before a payment whose reference
names no mirrored invoice is called unmatched, the number is looked up in AIQ.

A matching run reads which of its payments' reference keys name an open or paid invoice of the
mirror (index.load_run_inputs). Of the keys that name none, those shaped like the entity's own
invoice numbers (the letters of its recent invoices' numbers, then digits: "INV10234") are
written as AIQ writes that entity's numbers ("INV-010234") and looked up in one GetInvoicesBy
call per entity; each posted sales invoice found is read with GetTransactionByInvoiceID and
mirrored as a pull would (ledger.sync.pull.mirror_invoices_by_number), and the run matches
against it in the same pass. Reads only (writes to AIQ go through the outbox).

Bounded: at most MATCHING_AIQ_LOOKUPS numbers per run, and a number AIQ did not have is not
asked again for MISS_SECONDS (a storm of unknown references cannot flood AIQ). A lookup that
fails (AIQ down, no credentials) is logged and the run goes on without it.
"""

import logging
import re

from django.conf import settings
from django.core.cache import cache

from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqError
from ledger.models import Entity, Invoice
from ledger.sync.pull import mirror_invoices_by_number
from payments.matching.index import hit_rows, payment_keys

log = logging.getLogger(__name__)

MISS_SECONDS = 6 * 3600
SAMPLE = 200  # recent invoices per entity read for the shape of its numbers
_KEY = re.compile(r"^([A-Z]+)([0-9]{3,})$")
_NUMBER = re.compile(r"^(.*?)([0-9]+)$")


def number_shapes(entity_id: int) -> dict[str, tuple[str, int]]:
    """Letters of an invoice number key -> (how the number starts as written, its digits'
    width), from the entity's most recent invoices: {"INV": ("INV-", 6)}."""
    shapes: dict[str, tuple[str, int]] = {}
    numbers = (
        Invoice.objects.filter(entity_id=entity_id)
        .order_by("-id")
        .values_list("invoice_number", "number_key")[:SAMPLE]
    )
    for number, key in numbers:
        written, matched = _NUMBER.match(number or ""), _KEY.match(key or "")
        if written and matched and matched.group(1) not in shapes:
            shapes[matched.group(1)] = (written.group(1), len(written.group(2)))
    return shapes


def unknown_numbers(payments, known_keys: set[str]) -> dict[int, dict[str, str]]:
    """Entity id -> {number as AIQ writes it: its key} for the payments' keys shaped like that
    entity's invoice numbers that name no mirrored invoice, at most the run's limit."""
    limit = settings.MATCHING_AIQ_LOOKUPS
    out: dict[int, dict[str, str]] = {}
    shapes_of: dict[int, dict] = {}
    count = 0
    for payment in payments:
        for key in sorted(payment_keys(payment) - known_keys):
            matched = _KEY.match(key)
            if matched is None:
                continue
            shapes = shapes_of.get(payment.entity_id)
            if shapes is None:
                shapes = shapes_of[payment.entity_id] = number_shapes(payment.entity_id)
            shape = shapes.get(matched.group(1))
            if shape is None:
                continue
            number = shape[0] + matched.group(2).zfill(shape[1])
            if number in out.get(payment.entity_id, ()) or cache.get(
                _miss_key(payment.entity_id, number)
            ):
                continue
            out.setdefault(payment.entity_id, {})[number] = key
            count += 1
            if count >= limit:
                return out
    return out


def _miss_key(entity_id: int, number: str) -> str:
    return f"aiq-invoice-miss:{entity_id}:{number}"


def invoices_from_aiq(payments, inputs) -> list[Invoice]:
    """Look up in AIQ the invoices the run's payments name that the mirror lacks, mirror those
    AIQ has, and add their keys to the run's hits (RunInputs.hits). The mirrored invoices."""
    if settings.MATCHING_AIQ_LOOKUPS <= 0 or not payments:
        return []
    known = {row[3] for row in inputs.hits} | set(inputs.paid)
    wanted = unknown_numbers(payments, known)
    mirrored: list[Invoice] = []
    for entity_id, numbers in wanted.items():
        entity = Entity.objects.filter(pk=entity_id).first()
        if entity is None:
            continue
        try:
            found = mirror_invoices_by_number(AiqClient.for_entity(entity), entity, list(numbers))
        except AiqError as error:
            log.warning("AIQ look-up of %d invoice number(s) failed: %s", len(numbers), error)
            continue
        have = {invoice.invoice_number for invoice in found}
        for number in numbers:
            if number not in have:
                cache.set(_miss_key(entity_id, number), True, MISS_SECONDS)
        mirrored += found
    if mirrored:
        present = {row[0] for row in inputs.hits}
        keys = {invoice.number_key for invoice in mirrored}
        inputs.hits.extend(row for row in hit_rows(keys) if row[0] not in present)
    return mirrored
