"""Statement files (bank CSV/Excel, SmartDebit reports): preview, then import.

Partial-file rule: a file with any invalid row is rejected as a whole and every row error is
listed, so a statement is never half in the app; fix the file (or the format) and upload again.
Duplicates across uploads: the same file (sha256) cannot be imported twice, and each row's
external id (the bank's id, or a hash of its date, amount, reference and content) makes rows
already imported from an overlapping statement count as duplicates, not new payments.

Between preview and import the file is kept on its ImportBatch (in the database, so the
import may be confirmed from any web host): statement_preview stores it, statement_import
empties it, and statement_previews_forget_stale empties those of previews nobody confirmed.
The preview's reading of the file is kept too, in the cache (Redis where configured), under
the batch and the file's sha256: the import writes what the preview read instead of reading
a 100,000-entry file a second time, and reads the kept bytes again only when the cache lost it.
"""

import hashlib
import re
from dataclasses import dataclass, field
from datetime import timedelta

from django import forms
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from core.gcpause import gc_paused
from ledger.companies import default_entity
from payments.models import ImportBatch, ImportFormat, Payment, Statement, StatementAccount
from payments.services.auto_match import auto_match_soon
from payments.services.linkers import payments_link_booked
from payments.services.payment_rows import existing_external_ids
from payments.services.payments import payments_upsert
from payments.services.provider_books import payout_lines_recognise
from payments.sources.bank_csv import MAX_BYTES
from payments.sources.bank_files import detect_format, read_entries
from payments.sources.statement_rows import (
    ParsedStatement,
    StatementError,
    statement_items,
)
from staff.services import audit_log

PARTIAL_FILE_RULE = (
    "A file with any invalid row is rejected as a whole, with every row error listed; "
    "nothing from it is imported until the file is fixed and uploaded again."
)
STALE_PREVIEW = timedelta(days=1)


def _reading_key(batch: ImportBatch) -> str:
    """Where a preview's reading of its file waits for the confirm: per batch and content."""
    return f"statement-reading:{batch.pk}:{batch.sha256}"


def _reading_keep(batch: ImportBatch, parsed: ParsedStatement) -> None:
    with gc_paused():  # pickling 100,000 rows: see core.gcpause
        cache.set(_reading_key(batch), parsed, timeout=int(STALE_PREVIEW.total_seconds()))


def _reading_kept(batch: ImportBatch) -> ParsedStatement | None:
    with gc_paused():
        return cache.get(_reading_key(batch))


@dataclass
class Preview:
    batch: ImportBatch
    parsed: ParsedStatement | None
    new_items: list = field(default_factory=list)
    duplicate_ids: set = field(default_factory=set)
    # per duplicate: which earlier payment it matched, and by which rule
    duplicates: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # overlapping statements of the account
    file_error: str = ""

    @property
    def ok(self) -> bool:
        return not self.file_error and self.parsed is not None and not self.parsed.errors


def _fallback_account(import_format, statement_account) -> StatementAccount | None:
    """The account a file that does not name one belongs to: the one the clerk chose, else
    the only account whose saved layout this is."""
    if statement_account is not None:
        return statement_account
    if import_format is None:
        return None
    owners = list(StatementAccount.objects.filter(import_format=import_format)[:2])
    return owners[0] if len(owners) == 1 else None


def _parse(*, import_format, statement_account, filename: str, content: bytes) -> ParsedStatement:
    source = import_format.source if import_format else "bank"
    parsed, entries = read_entries(content, filename, layout=import_format, source=source)
    chosen = _fallback_account(import_format, statement_account)
    if chosen is not None:
        for header in parsed.statements:
            # an account number alone (Lloyds' SAP-compliant MT940): the chosen account's
            if re.fullmatch(r"\d{8}", header.account_key) and chosen.account_key.endswith(
                f" {header.account_key}"
            ):
                header.account_id = chosen.account_key
    stated = parsed.account_keys
    if statement_account is not None and stated and stated != [statement_account.account_key]:
        raise StatementError(
            f"This file is a statement of {', '.join(stated)}, not of the bank account "
            f"chosen ({statement_account}, {statement_account.account_key})."
        )
    keys = set(stated) | ({chosen.account_key} if chosen else set())
    account_ids = dict(
        StatementAccount.objects.filter(account_key__in=keys).values_list("account_key", "id")
    )
    return statement_items(
        parsed,
        entries,
        source=source,
        filename=filename,
        fallback_account=chosen.account_key if chosen else "",
        account_ids=account_ids,
    )


def _duplicates(source: str, items) -> dict[str, dict]:
    """external id -> the earlier payment it matches (id, date, amount, where it came from)."""
    stored = existing_external_ids(source=source, external_ids=[i.external_id for i in items])
    ids = [i.external_id for i in items if i.external_id in stored]
    found = {}
    for start in range(0, len(ids), 500):
        for row in Payment.objects.filter(
            source=source, external_id__in=ids[start : start + 500]
        ).values("id", "external_id", "received_at", "amount", "currency", "raw"):
            found[row["external_id"]] = row
    return found


def _duplicate_rule(item, earlier: dict) -> dict:
    raw = earlier["raw"] if isinstance(earlier["raw"], dict) else {}
    where = (
        f"row {raw['row']} of {raw['file']}"
        if raw.get("file") and raw.get("row")
        else f"payment {earlier['id']}"
    )
    account = item.raw.get("account")
    if item.external_id.startswith("sd:"):
        rule = "same SmartDebit collection (payer reference, debit date and amount)"
    elif item.external_id.startswith("row:"):
        rule = "same date, amount, reference and row content" + (
            f" on account {account}" if account else ""
        )
    else:
        rule = "same bank transaction id" + (f" on account {account}" if account else "")
    return {
        "row": item.raw.get("row"),
        "payment_id": earlier["id"],
        "received_at": earlier["received_at"],
        "amount": earlier["amount"],
        "currency": earlier["currency"],
        "earlier": where,
        "rule": rule,
    }


def _overlaps(parsed: ParsedStatement) -> list[str]:
    notes = []
    for header in parsed.statements:
        if not header.account_key or not (header.start_date and header.end_date):
            continue
        earlier = (
            Statement.objects.filter(
                account__account_key=header.account_key,
                start_date__lte=header.end_date,
                end_date__gte=header.start_date,
            )
            .select_related("batch")
            .order_by("start_date")[:5]
        )
        for other in earlier:
            notes.append(
                f"Overlaps statement {other.statement_id or other.pk} of {header.account_key} "
                f"({other.start_date:%d/%m/%Y} to {other.end_date:%d/%m/%Y}, imported from "
                f"{other.batch.filename} on {other.created_at:%d/%m/%Y}): entries already "
                "imported from it are counted as duplicates."
            )
    return notes


def statement_preview(
    *,
    user,
    import_format: ImportFormat | None,
    filename: str,
    content: bytes,
    statement_account: StatementAccount | None = None,
):
    """Read and check a file; nothing is imported. Records the attempt as an ImportBatch.

    A file without errors is kept on the batch, created with it, so a previewed batch never
    exists without the bytes to confirm it; a rejected file can never be imported, so it is
    not kept.
    """
    sha256 = hashlib.sha256(content).hexdigest()
    parsed, file_error = None, ""
    earlier = ImportBatch.objects.filter(sha256=sha256, state=ImportBatch.State.IMPORTED).first()
    file_format = ""
    if earlier:
        file_error = (
            f"This file was already imported on {earlier.created_at:%d/%m/%Y %H:%M} "
            f"(batch {earlier.pk})."
        )
    else:
        try:
            file_format = detect_format(content, filename)
            parsed = _parse(
                import_format=import_format,
                statement_account=statement_account,
                filename=filename,
                content=content,
            )
            file_format = parsed.file_format
        except StatementError as error:
            file_error = str(error)
    new_items, duplicates, notes = [], [], []
    if parsed:
        source = import_format.source if import_format else "bank"
        found = _duplicates(source, parsed.items)
        duplicates = [
            _duplicate_rule(i, found[i.external_id]) for i in parsed.items if i.external_id in found
        ]
        new_items = [i for i in parsed.items if i.external_id not in found]
        notes = _overlaps(parsed)
    errors = (
        [{"row": 0, "field": "file", "message": file_error}]
        if file_error
        else [e.as_dict() for e in parsed.errors]
    )
    with transaction.atomic():
        batch = ImportBatch.objects.create(
            # the company whose money the file is: its bank account's, else its layout's own
            entity_id=(
                statement_account.entity_id
                if statement_account is not None
                else getattr(import_format, "entity_id", None)
            ),
            import_format=import_format,
            file_format=file_format[:20],
            statement_account=statement_account,
            filename=filename[:255],
            sha256=sha256,
            uploaded_by=user,
            state=ImportBatch.State.REJECTED if errors else ImportBatch.State.PREVIEWED,
            row_count=parsed.row_count if parsed else 0,
            duplicate_count=len(duplicates),
            errors=errors[:1000],
            content=b"" if errors else content,
        )
        audit_log(
            actor=user,
            action="statement.preview",
            obj=batch,
            summary=f"{filename}: {len(new_items)} new, {len(duplicates)} duplicate, "
            f"{len(errors)} error(s)",
        )
    if not errors:
        _reading_keep(batch, parsed)
    return Preview(
        batch=batch,
        parsed=parsed,
        new_items=new_items,
        duplicate_ids={i.external_id for i in parsed.items} - {i.external_id for i in new_items}
        if parsed
        else set(),
        duplicates=duplicates,
        notes=notes,
        file_error=file_error,
    )


def _accounts_for(parsed: ParsedStatement, chosen: StatementAccount | None) -> dict:
    """account key -> StatementAccount, creating those the file names for the first time
    (in the entity of the chosen account, else the payments entity; an admin links each
    new one to its AIQ bank account)."""
    keys = set(parsed.account_keys) | {i.raw.get("account") for i in parsed.items} - {None, ""}
    accounts = {a.account_key: a for a in StatementAccount.objects.filter(account_key__in=keys)}
    entity = chosen.entity if chosen else None
    for header in parsed.statements:
        key = header.account_key
        if key and key not in accounts:
            accounts[key], _ = StatementAccount.objects.get_or_create(
                account_key=key,
                defaults={
                    "entity": entity or default_entity(),
                    "name": header.account_name[:100],
                    "currency": header.currency[:3],
                },
            )
    return accounts


def statement_import(*, user, batch: ImportBatch, content: bytes) -> ImportBatch:
    """Import a previewed file (the same bytes). All rows or none.

    The bytes kept on the batch are emptied in the transaction that stores the payments from
    them, so the table does not keep the file once it is imported. Each statement in the file
    is kept (account, period, balances) with the batch.
    """
    if hashlib.sha256(content).hexdigest() != batch.sha256:
        raise StatementError("This is not the file that was previewed; preview it again.")
    if batch.state != ImportBatch.State.PREVIEWED:
        raise StatementError(
            f"Batch {batch.pk} is {batch.get_state_display().lower()}; "
            "only a previewed file without errors can be imported."
        )
    # what the preview read (and showed), else the kept bytes read again
    parsed = _reading_kept(batch) or _parse(
        import_format=batch.import_format,
        statement_account=batch.statement_account,
        filename=batch.filename,
        content=content,
    )
    if parsed.errors:
        raise StatementError(PARTIAL_FILE_RULE)
    with transaction.atomic():
        # the caller already holds the bytes; the lock need not read them again
        locked = ImportBatch.objects.select_for_update().defer("content").get(pk=batch.pk)
        if locked.state != ImportBatch.State.PREVIEWED:
            raise StatementError(f"Batch {batch.pk} was imported meanwhile.")
        if ImportBatch.objects.filter(sha256=batch.sha256, state="imported").exists():
            raise StatementError("This file was already imported.")
        chosen = _fallback_account(batch.import_format, batch.statement_account)
        accounts = _accounts_for(parsed, chosen)
        for item in parsed.items:
            account = accounts.get(item.raw.get("account", ""))
            item.statement_account_id = account.pk if account else None
        entities = {a.entity_id for a in accounts.values()}
        entity = accounts[next(iter(accounts))].entity if len(entities) == 1 else None
        result = payments_upsert(
            items=_only_new(parsed), origin="statement.import", actor=user, entity=entity
        )
        # a provider's payout arriving is not a customer payment: linked to its payout and
        # kept away from matching (payments/services/provider_books.py)
        payout_lines_recognise(payment_ids=list(result.ids.values()))
        # an already-paid order's money: its receipt is in AIQ already (payments/services/
        # linkers.py)
        payments_link_booked(payment_ids=list(result.ids.values()))
        auto_match_soon(payment_ids=list(result.ids.values()))
        for header in parsed.statements:
            account = accounts.get(header.account_key) or chosen
            if account is None:
                continue
            Statement.objects.create(
                account=account,
                batch=locked,
                statement_id=header.statement_id[:100],
                start_date=header.start_date,
                end_date=header.end_date,
                currency=header.currency[:3],
                opening_balance=header.opening_balance,
                closing_balance=header.closing_balance,
                entry_count=header.entry_count,
                money_in=header.money_in,
                money_out=header.money_out,
                credit_count=header.credit_count,
            )
        locked.state = ImportBatch.State.IMPORTED
        locked.imported_count = result.created
        locked.duplicate_count = len(parsed.items) - result.created
        locked.statement_account = locked.statement_account or (
            next(iter(accounts.values())) if len(accounts) == 1 else None
        )
        locked.content = b""
        locked.save(
            update_fields=[
                "state",
                "imported_count",
                "duplicate_count",
                "content",
                "statement_account",
            ]
        )
        audit_log(
            actor=user,
            action="statement.import",
            obj=locked,
            summary=f"{locked.filename}: {result.created} payment(s) imported, "
            f"{locked.duplicate_count} duplicate(s) skipped",
        )
    cache.delete(_reading_key(locked))
    return locked


def statement_previews_forget_stale() -> None:
    """Empty the content of previews nobody confirmed within STALE_PREVIEW.

    Called on each upload rather than by a schedule: uploads are what add content, so the
    table stays bounded by one day of previews without another periodic task to deploy.
    The batch itself stays as the record of the attempt; its confirm asks for a new upload.
    """
    ImportBatch.objects.filter(
        state=ImportBatch.State.PREVIEWED, created_at__lt=timezone.now() - STALE_PREVIEW
    ).exclude(content=b"").update(content=b"")


def _only_new(parsed: ParsedStatement):
    """Rows already imported (overlapping statements) are left exactly as they are."""
    source = parsed.items[0].source if parsed.items else ""
    existing = existing_external_ids(
        source=source, external_ids=[i.external_id for i in parsed.items]
    )
    return [i for i in parsed.items if i.external_id not in existing]


class StatementUploadForm(forms.Form):
    """For the staff UI: the file, its bank account and (CSV/Excel only) its layout."""

    statement_account = forms.ModelChoiceField(
        queryset=StatementAccount.objects.order_by("name", "account_key"),
        required=False,
        label="Bank account",
        help_text="Needed only when the file does not say (CSV, Excel, QIF).",
    )
    import_format = forms.ModelChoiceField(
        queryset=ImportFormat.objects.order_by("name"),
        required=False,
        label="Bank / format",
        help_text="The saved column layout, for CSV and Excel files.",
    )
    file = forms.FileField(help_text=PARTIAL_FILE_RULE)

    def __init__(self, *args, company_ids: list[int] | None = None, **kwargs):
        """company_ids: the companies the screen is on (None: every company); their bank
        accounts, and their own layouts beside the shared ones, are offered."""
        super().__init__(*args, **kwargs)
        if company_ids is not None:
            accounts = self.fields["statement_account"]
            accounts.queryset = accounts.queryset.filter(entity_id__in=company_ids)
            layouts = self.fields["import_format"]
            layouts.queryset = layouts.queryset.filter(
                Q(entity__isnull=True) | Q(entity_id__in=company_ids)
            )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
        return upload

    def clean(self):
        cleaned = super().clean()
        account = cleaned.get("statement_account")
        if not cleaned.get("import_format") and account is not None and account.import_format:
            cleaned["import_format"] = account.import_format  # the account's saved layout
        return cleaned
