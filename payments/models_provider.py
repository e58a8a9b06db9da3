"""A card or Direct Debit provider's money as accountants book it (issue 17).

A ProviderAccount is one provider account's money in one currency ("Stripe GBP", "GoCardless
EUR") in one AIQ company: its receipts land in a clearing bank account in AIQ (not in the real
bank), its fees go to a fees GL account (and the VAT on them, where the provider charges VAT,
to a VAT GL account), and its payouts move the net from clearing to the real bank account the
provider pays into. After a payout the clearing account holds exactly what the provider still
holds for us.
"""

from django.db import models
from django.db.models import Q

from core.fields import MoneyField

# an environment variable's name (or nothing): A-Z, digits, underscores
ENV_NAME = r"^([A-Z][A-Z0-9_]*)?$"


class ProviderAccount(models.Model):
    entity = models.ForeignKey("ledger.Entity", on_delete=models.PROTECT)
    source = models.CharField(
        max_length=12, choices=[("stripe", "Stripe"), ("gocardless", "GoCardless")]
    )
    currency = models.CharField(max_length=3)
    name = models.CharField(max_length=100, help_text='e.g. "Stripe GBP"')
    clearing_bank_account = models.ForeignKey(
        "ledger.BankAccount",
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The AIQ bank account this provider's receipts land in (its clearing account)",
    )
    payout_bank_account = models.ForeignKey(
        "ledger.BankAccount",
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The real AIQ bank account its payouts arrive in",
    )
    fees_gl_account_code = models.CharField(
        max_length=50, help_text="AIQ GL account the provider's fees are an expense on"
    )
    fee_tax_gl_account_code = models.CharField(
        max_length=50,
        blank=True,
        help_text="AIQ GL account for the VAT the provider charges on its fees (empty: none)",
    )
    # disputes and charge-backs (payments/services/provider_disputes.py): the money a dispute
    # takes out of clearing waits on a balance-sheet account until the dispute is decided; a
    # lost one is written off to an expense (bad debt) account. Empty: disputes not booked.
    disputes_gl_account_code = models.CharField(
        max_length=50,
        blank=True,
        help_text="AIQ GL account (balance sheet) holding disputed money until the dispute "
        "is decided (empty: disputes are not booked)",
    )
    dispute_loss_gl_account_code = models.CharField(
        max_length=50,
        blank=True,
        help_text="AIQ GL account a lost dispute or charge-back is written off to (bad debt)",
    )
    fx_gl_account_code = models.CharField(
        max_length=50,
        blank=True,
        help_text="AIQ GL account of realised exchange gains and losses (empty: not booked)",
    )
    # a provider account in another currency than the company's (a EUR Stripe account in a
    # GBP company): its clearing and payout banks are AIQ currency bank accounts, and AIQ's
    # general journal has no currency, so money moves between them as bank payments and
    # receipts (SaveSundryReceiptPayments, with ExchangeRate) through this GL account, which
    # each transfer leaves at zero (payments/services/provider_currency.py)
    transfer_gl_account_code = models.CharField(
        max_length=50,
        blank=True,
        help_text="AIQ GL account money passes through between two bank accounts in another "
        'currency than the company\'s ("Bank transfers in transit"); needed only by a provider '
        "account in a foreign currency",
    )
    # how the provider's payouts read on the bank statement ("STRIPE PAYMENTS UK LTD",
    # "GOCARDLESS"): a statement line carrying it, for a payout's amount within the window
    # around its arrival date, is that payout
    statement_narrative = models.CharField(max_length=100)
    payout_window_days = models.PositiveSmallIntegerField(default=3)
    # The account's own keys, by the NAME of the environment variable holding each (the value
    # is read when used, never stored, shown or logged). Empty: the installation's
    # STRIPE_API_KEY / GOCARDLESS_ACCESS_TOKEN and *_WEBHOOK_SECRETS (one company, one account).
    api_key_env = models.CharField(
        max_length=60,
        blank=True,
        help_text="Name of the environment variable holding this account's secret API key "
        "(Stripe) or access token (GoCardless), e.g. STRIPE_IE_API_KEY",
    )
    webhook_secret_env = models.CharField(
        max_length=60,
        blank=True,
        help_text="Name of the environment variable holding this account's webhook signing "
        "secret(s), comma-separated while rotating, e.g. STRIPE_IE_WEBHOOK_SECRET",
    )
    api_base_env = models.CharField(
        max_length=60,
        blank=True,
        help_text="Stripe only, optional: name of the environment variable holding this "
        "account's API address (empty: STRIPE_API_BASE), e.g. STRIPE_IE_API_BASE",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "source", "currency"], name="provideraccount_unique"
            ),
            models.CheckConstraint(
                condition=Q(source__in=["stripe", "gocardless"]), name="provideraccount_source"
            ),
            models.CheckConstraint(
                condition=~Q(clearing_bank_account=models.F("payout_bank_account")),
                name="provideraccount_clearing_is_not_the_bank",
            ),
            models.CheckConstraint(
                condition=Q(api_key_env__regex=ENV_NAME)
                & Q(webhook_secret_env__regex=ENV_NAME),  # a variable's name, not a secret
                name="provideraccount_env_names",
            ),
            models.CheckConstraint(
                condition=Q(api_base_env__regex=ENV_NAME), name="provideraccount_base_env_name"
            ),
        ]

    def __str__(self):
        return self.name or f"{self.get_source_display()} {self.currency}"


class ClearingBalance(models.Model):
    """One check of a clearing account: what AIQ's books hold in it (GetBankAccountBalance)
    beside what the provider says it holds for us. Kept, so the screen can chart it over time."""

    provider_account = models.ForeignKey(
        ProviderAccount, on_delete=models.PROTECT, related_name="clearing_balances"
    )
    checked_at = models.DateTimeField()
    aiq_balance = MoneyField(help_text="The clearing bank account's balance in AIQ")
    provider_balance = MoneyField(null=True, blank=True)
    provider_basis = models.CharField(
        max_length=200, blank=True, help_text="Where the provider's figure came from"
    )
    checked_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        indexes = [
            models.Index(fields=["provider_account", "-checked_at"], name="clearing_balance_recent")
        ]

    @property
    def difference(self):
        if self.provider_balance is None:
            return None
        return self.aiq_balance - self.provider_balance
