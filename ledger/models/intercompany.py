"""AIQ's valid intercompany connections as mirrored (GetInterCompanyConnectionList).

A connection pairs an account in this company (the local side: the customer the group company
is here) with one in another AIQ company of the group (the remote side: the supplier this
company is there). An intercompany sale raises the sales invoice on the local account and the
matching purchase invoice on the remote one (sales/services/intercompany.py).
"""

from django.db import models

from ledger.models.entities import SyncedModel


class InterCompanyConnection(SyncedModel):
    local_account_id = models.IntegerField(help_text="AIQ AccountID of the local account")
    local_account_code = models.CharField(max_length=50)
    local_account_name = models.CharField(max_length=200, blank=True)
    local_currency = models.CharField(max_length=3, blank=True)
    remote_company_id = models.CharField(max_length=100, help_text="AIQ EntityID of the other")
    remote_company_name = models.CharField(max_length=200, blank=True)
    remote_base_currency = models.CharField(max_length=3, blank=True)
    remote_account_id = models.IntegerField()
    remote_account_code = models.CharField(max_length=50)
    remote_account_name = models.CharField(max_length=200, blank=True)
    remote_currency = models.CharField(max_length=3, blank=True)
    # listed by AIQ at the last pull; a connection AIQ no longer lists stays (sales name it)
    # but is refused for new intercompany sales
    valid = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["entity", "local_account_code", "remote_company_id", "remote_account_code"],
                name="intercompany_connection_unique",
            ),
        ]

    def __str__(self):
        return f"{self.local_account_code} -> {self.remote_company_id}:{self.remote_account_code}"
