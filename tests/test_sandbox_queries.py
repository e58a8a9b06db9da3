"""Set-up data, statements, balances and change polling from the seeded demo company."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from sandbox.testing import login, soap_service


@pytest.fixture
def aiq(aiq_sandbox):
    service = soap_service(aiq_sandbox)
    token = login(aiq_sandbox, service)

    class Aiq:
        sandbox = aiq_sandbox

        def __getattr__(self, name):
            operation = getattr(service, name)
            return lambda **kwargs: operation(token=token, **kwargs)

    return Aiq()


def test_the_seed_is_a_realistic_demo_company(aiq):
    customers = aiq.GetActiveCustomerList().Result.Customer
    assert len(customers) == 21
    assert all(c.Email and "@" in c.Email for c in customers)
    assert {c.CurrencyCode for c in customers} == {"GBP", "EUR"}
    banks = {b.BankAccountCode: (b.Code, b.CurrencyCode) for b in aiq.GetBankList().Result.Bank}
    assert banks == {"BANK-GBP": ("1200", "GBP"), "BANK-EUR": ("1210", "EUR")}
    gl = {row.string[0]: row.string[2] for row in aiq.GetGLAccountList().Result.ArrayOfString}
    assert gl["4900"] == "discount" and gl["8100"] == "writeoff"
    taxes = {t.Code: t.Rate for t in aiq.GetTaxCodeList().Result.Tax}
    assert taxes["T1"] == Decimal("20")
    invoices = aiq.GetInvoicesBy(query={"Limit": 500}).Result.Invoice
    assert len(invoices) == 60
    assert invoices[0].InvoiceNumber == "INV-1001"
    assert {i.CurrencyCode for i in invoices} == {"GBP", "EUR"}


def test_the_seed_is_deterministic(tmp_path):
    from sandbox.seed import seed
    from sandbox.store import Store

    def books(path):
        seed(str(path))
        store = Store(str(path))
        with store.transaction() as db:
            rows = db.execute(
                "SELECT id, type, internal_number, amount_milli, outstanding_milli, "
                "transaction_date FROM txn ORDER BY id"
            ).fetchall()
        store.close()
        return [tuple(row) for row in rows]

    assert books(tmp_path / "a.sqlite3") == books(tmp_path / "b.sqlite3")


def test_part_paid_invoices_show_in_statements_and_balances(aiq):
    statement = aiq.GetCustomersStatement(
        upTo=datetime(2026, 12, 31), customerCodes={"string": ["ACME"]}, showZeros=False
    ).Result.CustomerStatement
    [acme] = statement
    items = acme.TransactionList.TransactionState
    assert acme.CustomerState.CurrentBalance == sum(i.OutstandingAmount for i in items)
    assert any(i.Type == "SalesInvoice" and 0 < i.OutstandingAmount < i.Amount for i in items)
    account_id = aiq.GetCustomer(customerCode="ACME").Result.AccountID
    [balance] = aiq.GetAccountBalanceInformation(
        edt=datetime(2026, 12, 31), accountIDs={"int": [account_id]}
    ).Result.AccountBalanceInformation
    assert balance.Balance == acme.CustomerState.CurrentBalance
    assert balance.CreditLeft == balance.CreditLimit - balance.Balance


def test_changes_since_include_allocations(aiq):
    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=5)
    receipt = aiq.SaveSalesReceiptGetBackTransactionID(
        salesReceipt={"CustomerCode": "ACME", "CheckReference": "POLL-1",
                      "PaymentAmount": Decimal("1.00"), "BankAccountCode": "BANK-GBP"}
    ).transactionID  # fmt: skip
    invoice = aiq.GetTransactionsByExternalReference(
        query={"ExternalReference": "SO-2001"}
    ).Result.WSTransactionSummary[0]
    aiq.AllocateTransactions(
        transactionID_1=invoice.TransactionID, transactionID_2=receipt, allocationAmount=1
    )
    changed = aiq.GetTransactionsModifiedBy(query={"FromDate": since}).Result
    by_id = {c.TransactionID: c for c in changed.WSChangedTransactionSummary}
    assert by_id[receipt].Status == "Processed"  # changed after posting
    assert by_id[invoice.TransactionID].OutstandingAmount == invoice.OutstandingAmount - 1
    nothing = aiq.GetTransactionsModifiedBy(query={"FromDate": datetime(2100, 1, 1)}).Result
    assert nothing is None or not nothing.WSChangedTransactionSummary


def test_departments_analysis_defaults_and_intercompany(aiq):
    dimensions = aiq.GetAnalysisDimensionSetup().Result.WSAnalysisDimension
    assert [d.Code for d in dimensions] == ["REGION", "LINE"]
    assert aiq.GetDepartmentById(departmentId="NS").Result.AnalysisCode1 == "NORTH"
    south = aiq.GetDepartmentsByAnalysisCode(query={"a1Filter": {"string": ["SOUTH"]}}).Result
    assert {d.DepartmentID for d in south.Department} == {"SS", "SV", "SH"}
    assert aiq.UpdateDepartment(departmentID="SH", newDescription="Hardware", active=False).Status
    sh = aiq.GetDepartmentById(departmentId="SH").Result
    assert (sh.Description, sh.IsActive) == ("Hardware", False)
    assert aiq.UpdateDepartment(departmentID="ZZ", newDescription="x", active=True).Status == (
        "Failure"
    )
    assert aiq.GetDepartmentList().Result.Department[0].DepartmentID == "ES"
    defaults = aiq.GetGLDefaults().Result
    defaults.TaxID = "T5"
    assert aiq.SaveGLDefaults(glDefaults=defaults).Status == "Success"
    assert aiq.GetGLDefaults().Result.TaxID == "T5"
    defaults.TaxID = "NOPE"
    assert aiq.SaveGLDefaults(glDefaults=defaults).Status == "Failure"
    [connection] = aiq.GetInterCompanyConnectionList().Result.WSInterCompanyConnection
    assert (connection.Local.EntityID, connection.Remote.EntityID) == ("demo", "demo-ie")
    assert connection.Remote.AccountCode == "DEMOUK"


def test_purchases_invoice_template_for_a_supplier(aiq):
    template = aiq.GetNewPurchasesInvoice(supplierCode="OFFICEPRO").Result
    assert template.Ledger == "Purchases"
    assert aiq.GetNewPurchasesInvoice(supplierCode="ACME").Status == "Failure"
