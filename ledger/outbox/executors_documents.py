"""Executor for attach_document: a stored breakdown file sent with AIQ's AttachDocument.

Payload: AttachDocumentPayload (ledger/outbox/payloads.py). The bytes are read from the
Attachment row at send time, never kept in the payload. result: {"attached": true,
"document_id": int | null}

AttachDocument answers a bare WSResultStatus: no document id, and AIQ has no idempotency key.
What it does offer is GetAttachedDocumentList(masterType, masterID), listing the documents of a
transaction by Filename and DocumentID. Our filename ends in "[ATT-<attachment id>]", unique per
attachment, so the read-back counts the documents of that transaction with exactly our filename:
one = attached, none = send, several = a person must remove the extra copy in AIQ. A name a
person might give a file by hand never carries that suffix, so their uploads are not mistaken
for ours.
"""

import hashlib

from django.utils import timezone

from ledger.aiq.results import get
from ledger.models import Attachment, OutboxCommand
from ledger.outbox.executors import (
    REPLAY_AFTER_EXPIRY,
    PayloadError,
    ReadBack,
    _require,
)

Kind = OutboxCommand.Kind
MASTER_TYPE = "Transaction"  # invoices are attached to their posted transaction


def _attachment(payload: dict):
    attachment = Attachment.objects.filter(pk=payload.get("attachment_id")).first()
    if attachment is None:
        raise PayloadError(f"attachment {payload.get('attachment_id')} no longer exists")
    content = bytes(attachment.content)
    if hashlib.sha256(content).hexdigest() != payload.get("sha256", attachment.sha256):
        raise PayloadError(f"attachment {attachment.pk} changed since it was queued")
    return attachment, content


def attach_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    _require(payload, "transaction_id", "filename")
    listed = client.get_attached_document_list(MASTER_TYPE, payload["transaction_id"])
    ours = [d for d in listed if get(d, "Filename") == payload["filename"]]
    result = {"attached": True}
    if len(ours) == 1:
        result["document_id"] = get(ours[0], "DocumentID")
    return ReadBack(len(ours), result)


def attach_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "attachment_id", "transaction_id", "filename")
    _attachment_row, content = _attachment(payload)
    client.attach_document(
        {
            "Header": {
                "MasterType": MASTER_TYPE,
                "MasterID": str(payload["transaction_id"]),
                "Filename": payload["filename"],
            },
            "Content": {"Content": content, "Comments": (payload.get("comments") or "")[:200]},
        },
        replay_safe=REPLAY_AFTER_EXPIRY,
    )
    # No id in AIQ's answer; the next sync or a read-back can fill it in, nothing depends on it.
    return {"attached": True, "document_id": None}


def attach_mirror_apply(command: OutboxCommand, payload: dict, result: dict, notes: list) -> None:
    """Mark the attachment as in AIQ (called from ledger/outbox/mirror.py on confirmation)."""
    updated = Attachment.objects.filter(pk=payload.get("attachment_id")).update(
        attached_at=timezone.now(), aiq_document_id=result.get("document_id")
    )
    if not updated:
        notes.append(f"attachment {payload.get('attachment_id')} not found")
