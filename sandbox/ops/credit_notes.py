"""Sales credit notes: GetNewSalesCreditNote -> SaveCreditNote -> PostCreditNotes...; reads."""

from sandbox import invoicing
from sandbox.ops.invoices import invoices
from sandbox.registry import SUCCESS, AiqFailure, Reply, operation


@operation("GetNewSalesCreditNote")
def get_new_sales_credit_note(ctx, args):
    return Reply(result=invoicing.template(ctx, args.get("customerCode"), "credit_note"))


@operation("SaveCreditNote", write=True)
def save_credit_note(ctx, args):
    invoicing.save(ctx, args.get("creditNote"), bool(args.get("create")), "credit_note")
    return Reply()


@operation("SaveCreditNoteGetBackCreditNoteID", write=True)
def save_credit_note_get_back_credit_note_id(ctx, args):
    credit_note_id = invoicing.save(
        ctx, args.get("creditNote"), bool(args.get("create")), "credit_note"
    )
    return Reply(siblings={"creditNoteID": credit_note_id})


@operation("PostCreditNotesGetBackTransactionIDs", write=True)
def post_credit_notes_get_back_transaction_ids(ctx, args):
    """One WSResultStatus per credit note, in order; transactionIDs keeps the same positions
    (0 where that credit note failed). Each note posts or fails on its own."""
    statuses, transaction_ids = [], []
    for credit_note_id in (args.get("creditNoteIDs") or {}).get("int") or []:
        ctx.db.execute("SAVEPOINT credit_note")
        try:
            transaction_ids.append(invoicing.post(ctx, credit_note_id, "credit_note"))
        except AiqFailure as failure:
            ctx.db.execute("ROLLBACK TO credit_note")
            transaction_ids.append(0)
            statuses.append(_status("Failure", failure.code, failure.message))
        else:
            statuses.append(_status("Success", SUCCESS, ""))
        ctx.db.execute("RELEASE credit_note")
    if not statuses:
        raise AiqFailure("No credit note ids were sent.")
    return Reply(result=statuses, siblings={"transactionIDs": {"int": transaction_ids}})


def _status(status, code, message):
    return {"Status": status, "ErrorCode": code, "ErrorMessage": message, "HasExpired": False}


@operation("GetCreditNote")
def get_credit_note(ctx, args):
    row = invoicing.document(ctx, args.get("creditNoteID"), "credit_note")
    return Reply(result=invoicing.record(ctx, row))


@operation("GetCreditNotesByExternalReference")
def get_credit_notes_by_external_reference(ctx, args):
    found = invoices(
        ctx, "external_reference = ?", (args.get("externalReference") or "",), "credit_note"
    )
    return Reply(result={"CreditNote": found})
