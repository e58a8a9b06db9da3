"""The forms of the company settings screens (payments/views/company_settings.py): each
checks what a finance clerk typed and says what is wrong in their words; the model's own
constraints are checked again when the service saves (payments/services/company_settings.py).
"""

import os
import re
from datetime import date
from decimal import Decimal

from django import forms
from django.db.models import Q

from core.money import MoneyError, exact, normalise_currency
from ledger.aiq.client import AiqClient
from ledger.aiq.errors import AiqError
from ledger.models import BankAccount, Entity, GLAccount
from payments.models import ImportFormat, MatchRule, StatementAccount
from payments.models_provider import ProviderAccount
from payments.services.provider_setup import GL_ROLES, aiq_gl_types, gl_problems
from payments.sources.bank_csv import FIELDS, POSITION

# the largest values a screen accepts: beyond them the matcher's search is no longer bounded
MAX_INVOICES, MAX_CANDIDATES, MAX_HEADER_ROW = 20, 500, 1000


def check_provider_gl(entity: Entity | None, data: dict) -> None:
    """AIQ itself is asked (GetGLAccountList) whether every GL account a provider account's
    books post to exists and can take a journal: AIQ has no operation that creates one, so a
    missing one is named, to be added in AIQ first (payments/services/provider_setup.py)."""
    codes = {field: data.get(field) or "" for _label, field in GL_ROLES}
    if entity is None or not any(codes.values()):
        return
    try:
        gl_types = aiq_gl_types(AiqClient.for_entity(entity))
    except AiqError as error:
        raise forms.ValidationError(
            f"AIQ could not be asked for {entity.name}'s GL accounts ({error}): the GL "
            "accounts were not checked, so nothing was saved. Try again."
        ) from None
    problems = gl_problems(
        codes, gl_types, (data.get("currency") or "").upper(), entity.base_currency
    )
    if problems:
        raise forms.ValidationError([f"{entity.name}: {text}." for text in problems])


class ThresholdForm(forms.Form):
    approval_threshold = forms.DecimalField(
        label="Approval threshold",
        required=False,
        min_value=Decimal(0),
        max_digits=15,
        decimal_places=3,
        help_text="A payment above this (in the company's money) needs a second person; "
        "empty: the installation's threshold",
    )

    def __init__(self, *args, entity: Entity, **kwargs):
        self.entity = entity
        super().__init__(*args, **kwargs)

    def clean_approval_threshold(self):
        value = self.cleaned_data["approval_threshold"]
        if value is None:
            return None
        try:
            return exact(value, self.entity.base_currency)
        except MoneyError as error:
            raise forms.ValidationError(str(error)) from None


class MatchRuleForm(forms.ModelForm):
    class Meta:
        model = MatchRule
        fields = [
            "name",
            "kind",
            "order",
            "enabled",
            "auto_approve",
            "monitor",
            "tolerance_absolute",
            "tolerance_percent",
            "tolerance_action",
            "write_off_gl_account_code",
            "max_invoices",
            "max_candidates",
        ]
        labels = {
            "order": "Runs in order",
            "auto_approve": "Approve without a person (at or below the approval threshold)",
            "monitor": "Watch only: record whether it would have approved",
            "tolerance_absolute": "Difference allowed (amount)",
            "tolerance_percent": "Difference allowed (% of the invoice)",
            "tolerance_action": "A difference within it is",
            "write_off_gl_account_code": "Write-off GL account (bank charges)",
            "max_invoices": "Most invoices one payment may settle",
            "max_candidates": "Most invoices looked at per payment",
        }

    def __init__(self, *args, entity: Entity | None, **kwargs):
        self.entity = entity
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["kind"].disabled = True  # a rule's kind is what it is

    def clean_tolerance_percent(self):
        value = self.cleaned_data["tolerance_percent"]
        if value is not None and not Decimal(0) <= value < Decimal(100):
            raise forms.ValidationError("A percentage from 0 to just under 100.")
        return value

    def clean_tolerance_absolute(self):
        value = self.cleaned_data["tolerance_absolute"]
        if value is not None and value < 0:
            raise forms.ValidationError("The amount cannot be negative.")
        return value

    def clean_max_invoices(self):
        return _between(self.cleaned_data["max_invoices"], 1, MAX_INVOICES)

    def clean_max_candidates(self):
        return _between(self.cleaned_data["max_candidates"], 1, MAX_CANDIDATES)

    def clean_write_off_gl_account_code(self):
        code = self.cleaned_data["write_off_gl_account_code"].strip()
        entity = self.entity
        if code and entity is not None:
            known = GLAccount.objects.filter(entity=entity)
            if known.exists() and not known.filter(code=code).exists():
                raise forms.ValidationError(
                    f"{code} is not one of {entity.name}'s GL accounts (if it was added in "
                    "AIQ lately, run the sync first)."
                )
        return code

    def clean(self):
        data = super().clean()
        if data.get("tolerance_action") == MatchRule.ToleranceAction.WRITE_OFF and not data.get(
            "write_off_gl_account_code"
        ):
            self.add_error(
                "write_off_gl_account_code", "A write-off needs the GL account it is booked to."
            )
        if data.get("auto_approve") and data.get("monitor"):
            self.add_error(
                "monitor", "Watching only and approving without a person cannot both be on."
            )
        return data


def _between(value, low: int, high: int):
    if value is not None and not low <= value <= high:
        raise forms.ValidationError(f"From {low} to {high}.")
    return value


class ImportFormatForm(forms.ModelForm):
    """A CSV/Excel statement layout: one box per field of ours, holding the file's column
    header (or #1, #2… for its position)."""

    class Meta:
        model = ImportFormat
        fields = [
            "name",
            "source",
            "date_format",
            "decimal_comma",
            "currency",
            "header_row",
            "amounts_inverted",
            "origin",
        ]
        labels = {
            "source": "Whose file",
            "date_format": "Dates look like",
            "decimal_comma": "Amounts use a decimal comma (1.234,56)",
            "currency": "Currency when the file has none",
            "header_row": "Row of the column headers (0: find it)",
            "amounts_inverted": "Money in shows as negative",
            "origin": "Where this layout came from",
        }

    def __init__(self, *args, entity: Entity | None, **kwargs):
        self.entity = entity
        super().__init__(*args, **kwargs)
        self.fields["source"].choices = [
            (value, label)
            for value, label in self.fields["source"].choices
            if value in ("bank", "smartdebit")
        ]
        self.fields["date_format"].help_text = (
            "As Python writes it: %d/%m/%Y is 31/12/2025, %Y-%m-%d is 2025-12-31; "
            "several separated by |"
        )
        self.column_names = []
        for name, meaning in FIELDS.items():
            key = f"column_{name}"
            self.fields[key] = forms.CharField(
                label=meaning,
                required=False,
                max_length=100,
                initial=(self.instance.column_map or {}).get(name, ""),
            )
            self.column_names.append(key)

    def columns(self):
        return [self[key] for key in self.column_names]

    def clean_date_format(self):
        text = self.cleaned_data["date_format"].strip()
        for part in text.split("|"):
            if "%" not in part or not re.fullmatch(r"(%[dmyYbBHMSjeaA]|[^%])+", part):
                raise forms.ValidationError(
                    f"{part!r} is not a date pattern: use %d (day), %m (month), %Y (year) "
                    "and the separators the file has, e.g. %d/%m/%Y."
                )
            try:
                date(2025, 12, 31).strftime(part)
            except ValueError:
                raise forms.ValidationError(f"{part!r} is not a date pattern.") from None
        return text

    def clean_currency(self):
        text = self.cleaned_data["currency"].strip()
        if not text:
            return ""
        try:
            return normalise_currency(text)
        except MoneyError as error:
            raise forms.ValidationError(str(error)) from None

    def clean_header_row(self):
        return _between(self.cleaned_data["header_row"], 0, MAX_HEADER_ROW)

    def clean(self):
        data = super().clean()
        column_map = {}
        for name in FIELDS:
            value = (data.get(f"column_{name}") or "").strip()
            if value:
                column_map[name] = value
        if "date" not in column_map:
            self.add_error("column_date", "Name the column holding the date.")
        if not {"amount", "credit"} & column_map.keys():
            self.add_error("column_amount", "Name the amount column (or the money-in column).")
        for name, value in column_map.items():
            if value.startswith("#") and not POSITION.match(value):
                self.add_error(f"column_{name}", "A position is # and a number, e.g. #3.")
        self.instance.column_map = column_map
        return data


class StatementAccountForm(forms.ModelForm):
    """A bank account of the company: its AIQ bank account and the layout of its exports."""

    class Meta:
        model = StatementAccount
        fields = ["name", "bank_account", "import_format"]
        labels = {
            "bank_account": "AIQ bank account its money is booked to",
            "import_format": "Layout of its CSV/Excel exports",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        entity_id = self.instance.entity_id
        self.fields["bank_account"].queryset = BankAccount.objects.filter(
            entity_id=entity_id
        ).order_by("bank_account_code")
        self.fields["import_format"].queryset = ImportFormat.objects.filter(
            Q(entity_id=entity_id) | Q(entity__isnull=True)
        ).order_by("name")


class ProviderAccountForm(forms.ModelForm):
    """A Stripe/GoCardless account of the company: its clearing and payout bank accounts in
    AIQ, its fees (and VAT on fees), disputes, exchange and transfer GL accounts, how its
    payouts read on the bank statement, and the NAMES of the environment variables that hold
    its key and webhook secret (the values are never shown or stored)."""

    class Meta:
        model = ProviderAccount
        fields = [
            "source",
            "currency",
            "name",
            "clearing_bank_account",
            "payout_bank_account",
            "fees_gl_account_code",
            "fee_tax_gl_account_code",
            "disputes_gl_account_code",
            "dispute_loss_gl_account_code",
            "fx_gl_account_code",
            "transfer_gl_account_code",
            "statement_narrative",
            "payout_window_days",
            "api_key_env",
            "webhook_secret_env",
        ]
        labels = {
            "clearing_bank_account": "Clearing account (AIQ bank account receipts land in)",
            "payout_bank_account": "Bank account payouts arrive in",
            "fees_gl_account_code": "Fees GL account",
            "fee_tax_gl_account_code": "VAT on fees GL account",
            "disputes_gl_account_code": "Disputed money GL account",
            "dispute_loss_gl_account_code": "Lost disputes GL account (bad debt)",
            "fx_gl_account_code": "Exchange gains and losses GL account",
            "transfer_gl_account_code": "Transfers in transit GL account",
            "statement_narrative": "Payouts read on the bank statement as",
            "payout_window_days": "Days a payout may take to arrive",
            "api_key_env": "Environment variable holding its API key",
            "webhook_secret_env": "Environment variable holding its webhook secret",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        banks = BankAccount.objects.filter(entity_id=self.instance.entity_id).order_by(
            "bank_account_code"
        )
        self.fields["clearing_bank_account"].queryset = banks
        self.fields["payout_bank_account"].queryset = banks
        if self.instance.pk:  # an account's provider and currency are what its money is
            self.fields["source"].disabled = True
            self.fields["currency"].disabled = True

    def clean_currency(self):
        try:
            return normalise_currency(self.cleaned_data["currency"])
        except MoneyError as error:
            raise forms.ValidationError(str(error)) from None

    def clean(self):
        data = super().clean()
        clearing, payout = data.get("clearing_bank_account"), data.get("payout_bank_account")
        if clearing is not None and clearing == payout:
            self.add_error(
                "payout_bank_account",
                "Payouts arrive in a real bank account, not the clearing one.",
            )
        if not self.errors:
            check_provider_gl(self.instance.entity, data)
        return data

    def secret_states(self) -> list[tuple[str, str, bool]]:
        """(what, variable name, whether it is set in this installation's environment)."""
        rows = []
        for what, field in (("API key", "api_key_env"), ("Webhook secret", "webhook_secret_env")):
            name = getattr(self.instance, field) or ""
            rows.append((what, name, bool(name and os.environ.get(name, "").strip())))
        return rows
