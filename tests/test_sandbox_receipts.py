"""Receipts, allocations, unallocation and pay-and-allocate against the sandbox over HTTP."""

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


def receipt(aiq, reference, amount="100.00", customer="ACME", bank="BANK-GBP", **extra):
    fields = {
        "CustomerCode": customer,
        "CheckReference": reference,
        "PaymentAmount": Decimal(amount),
        "BankAccountCode": bank,
        **extra,
    }
    return aiq.SaveSalesReceiptGetBackTransactionID(salesReceipt=fields)


def open_invoice(aiq, customer="ACME"):
    invoices = aiq.GetInvoicesByCustomerCode(customerCode=customer).Result.Invoice
    summary = aiq.GetTransactionsByExternalReference(
        query={"ExternalReference": invoices[0].ExternalReference}
    ).Result.WSTransactionSummary[0]
    return summary


def test_a_receipt_creates_a_transaction_with_the_whole_amount_outstanding(aiq):
    result = receipt(aiq, "RCPT-1", "123.45")
    assert result.SaveSalesReceiptGetBackTransactionIDResult.Status == "Success"
    found = aiq.GetTransactionsByExternalReference(query={"ExternalReference": "RCPT-1"})
    [summary] = found.Result.WSTransactionSummary
    assert summary.TransactionID == result.transactionID
    assert summary.TransactionType == "SalesReceipt"
    assert summary.ControlAmount == Decimal("-123.45")
    assert summary.OutstandingAmount == Decimal("-123.45")
    assert summary.TransactionBankGLAccountNumber == "1200"
    assert aiq.sandbox.state.receipt_count("RCPT-1") == 1


@pytest.mark.parametrize("missing", ["CheckReference", "BankAccountCode", "CustomerCode"])
def test_a_receipt_without_a_mandatory_field_is_refused_and_changes_nothing(aiq, missing):
    fields = {
        "CustomerCode": "ACME",
        "CheckReference": "RCPT-MISSING",
        "PaymentAmount": Decimal("10.00"),
        "BankAccountCode": "BANK-GBP",
    }
    del fields[missing]
    result = aiq.SaveSalesReceiptGetBackTransactionID(salesReceipt=fields)
    status = result.SaveSalesReceiptGetBackTransactionIDResult
    assert (status.Status, status.ErrorCode) == ("Failure", "VALIDATION_ERROR")
    assert missing in status.ErrorMessage
    assert result.transactionID == 0
    assert aiq.sandbox.state.receipt_count("RCPT-MISSING") == 0


def test_receipt_refusals_name_the_problem(aiq):
    cases = [
        (dict(customer="NOBODY"), "does not exist"),
        (dict(bank="BANK-XXX"), "Bank account 'BANK-XXX' does not exist"),
        (dict(amount="0"), "greater than zero"),
        (dict(amount="10.001"), "more decimal places"),
    ]
    for kwargs, message in cases:
        status = receipt(aiq, "RCPT-BAD", **kwargs).SaveSalesReceiptGetBackTransactionIDResult
        assert status.Status == "Failure"
        assert message in status.ErrorMessage
    assert aiq.sandbox.state.receipt_count("RCPT-BAD") == 0


def test_a_receipts_lodgment_number_is_kept_and_held_to_aiqs_limits(aiq):
    """AIQ's SalesReceipt: LodgmentNumber at most 50 characters, Description at most 500;
    the receipt's bank line carries its lodgment number when AIQ gives the transaction."""
    for field, text in (("LodgmentNumber", "L" * 51), ("Description", "D" * 501)):
        status = receipt(
            aiq, "RCPT-LONG", **{field: text}
        ).SaveSalesReceiptGetBackTransactionIDResult
        assert (status.Status, status.ErrorCode) == ("Failure", "VALIDATION_ERROR")
        assert field in status.ErrorMessage
    assert aiq.sandbox.state.receipt_count("RCPT-LONG") == 0

    saved = receipt(aiq, "RCPT-LODGED", LodgmentNumber="L" * 50, Description="D" * 500)
    lines = aiq.GetTransaction(transactionID=saved.transactionID).Result.Lines.TransactionLine
    assert {line.LodgmentNumber for line in lines} == {"L" * 50}
    [summary] = aiq.GetTransactionsByExternalReference(
        query={"ExternalReference": "RCPT-LODGED"}
    ).Result.WSTransactionSummary
    assert summary.ExternalReference == "RCPT-LODGED"  # the CheckReference, for read-back


def test_allocation_keeps_each_side_outstanding(aiq):
    invoice = open_invoice(aiq)
    before = invoice.OutstandingAmount
    paid = receipt(aiq, "RCPT-ALLOC", "50.00").transactionID
    status = aiq.AllocateTransactions(
        transactionID_1=invoice.TransactionID,
        transactionID_2=paid,
        allocationReference="ALLOC-1",
        allocationAmount=Decimal("30.00"),
        allocationDate="2026-11-20T00:00:00",
    )
    assert status.Status == "Success"
    assert aiq.sandbox.state.outstanding(invoice.TransactionID) == before - Decimal("30.00")
    assert aiq.sandbox.state.outstanding(paid) == Decimal("-20.00")
    allocations = aiq.GetAllocationsByTransactionId(transactionId=str(paid)).Result
    [entry] = allocations.WSAllocationTransactionDTO[0].AllocationEntries.WSAllocationEntryDTO
    assert entry.AllocatedToTransactionID == invoice.TransactionID
    assert entry.AllocationAmount == Decimal("30.00")


def test_over_allocation_is_refused(aiq):
    invoice = open_invoice(aiq)
    paid = receipt(aiq, "RCPT-OVER", "20.00").transactionID
    result = aiq.AllocateTransactions(
        transactionID_1=paid,
        transactionID_2=invoice.TransactionID,
        allocationAmount=Decimal("20.01"),
    )
    assert (result.Status, result.ErrorCode) == ("Failure", "OVER_ALLOCATION")
    too_much = invoice.OutstandingAmount + 1
    big = receipt(aiq, "RCPT-OVER-2", str(too_much)).transactionID
    result = aiq.AllocateTransactions(
        transactionID_1=invoice.TransactionID, transactionID_2=big, allocationAmount=too_much
    )
    assert result.ErrorCode == "OVER_ALLOCATION"
    assert aiq.sandbox.state.outstanding(invoice.TransactionID) == invoice.OutstandingAmount
    assert aiq.sandbox.state.allocations(big) == []


def test_allocation_across_customers_or_between_two_receipts_is_refused(aiq):
    invoice = open_invoice(aiq, "ACME")
    other = receipt(aiq, "RCPT-OTHER", "10.00", customer="BRIGHT").transactionID
    result = aiq.AllocateTransactions(
        transactionID_1=invoice.TransactionID, transactionID_2=other, allocationAmount=10
    )
    assert result.Status == "Failure"
    assert "different accounts" in result.ErrorMessage
    euro = receipt(aiq, "RCPT-EUR", "10.00", customer="QUAYSD", bank="BANK-EUR").transactionID
    result = aiq.AllocateTransactions(
        transactionID_1=invoice.TransactionID, transactionID_2=euro, allocationAmount=10
    )
    assert result.Status == "Failure"
    mine = receipt(aiq, "RCPT-MINE", "10.00").transactionID
    result = aiq.AllocateTransactions(
        transactionID_1=mine, transactionID_2=mine, allocationAmount=5
    )
    assert result.Status == "Failure"
    second = receipt(aiq, "RCPT-MINE-2", "10.00").transactionID
    result = aiq.AllocateTransactions(
        transactionID_1=mine, transactionID_2=second, allocationAmount=5
    )
    assert "one debit and one credit" in result.ErrorMessage


def test_allocation_with_discount_settles_the_invoice_with_a_discount_credit(aiq):
    invoice = open_invoice(aiq)
    outstanding = invoice.OutstandingAmount
    paid = receipt(aiq, "RCPT-DISC", str(outstanding - Decimal("5.00"))).transactionID
    result = aiq.AllocateTransactionsWithDiscount(
        transactionID_1=invoice.TransactionID,
        transactionID_2=paid,
        allocationReference="DISC-1",
        allocationAmount=outstanding - Decimal("5.00"),
        discountAmount=Decimal("5.00"),
    )
    assert result.Status == "Success"
    assert aiq.sandbox.state.outstanding(invoice.TransactionID) == 0
    assert aiq.sandbox.state.outstanding(paid) == 0
    discount = [t for t in aiq.sandbox.state.transactions("DISC-1") if t["type"] == "SalesDiscount"]
    assert [d["amount"] for d in discount] == [Decimal("-5.00")]


def test_unallocate_restores_both_sides_and_reports_per_transaction(aiq):
    invoice = open_invoice(aiq)
    paid = receipt(aiq, "RCPT-UNALLOC", "40.00").transactionID
    aiq.AllocateTransactions(
        transactionID_1=invoice.TransactionID, transactionID_2=paid, allocationAmount=40
    )
    result = aiq.UnallocateTransactions(transactionIDs={"int": [paid, 999999]})
    assert result.Status == "Success"
    statuses = result.Result.WSResultStatus
    assert [s.Status for s in statuses] == ["Success", "Failure"]
    assert aiq.sandbox.state.outstanding(paid) == Decimal("-40.00")
    assert aiq.sandbox.state.outstanding(invoice.TransactionID) == invoice.OutstandingAmount
    again = aiq.UnallocateTransactions(transactionIDs={"int": [paid]})
    assert again.Result.WSResultStatus[0].Status == "Failure"


def pay_and_allocate_query(reference, receipt_reference, amount="120.00", **overrides):
    query = {
        "PerformExternalReferenceDuplicateCheckOnInvoice": True,
        "PerformExternalReferenceDuplicateCheckOnReceipt": True,
        "BatchInvoice": {
            "CustomerCode": "CASTLE",
            "ExternalReference": reference,
            "Description": "Web order",
            "Lines": {
                "BatchSalesInvoiceLine": [
                    {
                        "GLAccountCode": "4000",
                        "TaxCode": "T1",
                        "NetAmount": Decimal("100.00"),
                        "TaxAmount": Decimal("20.00"),
                    }
                ]
            },
        },
        "Receipt": {
            "CustomerCode": "CASTLE",
            "CheckReference": receipt_reference,
            "PaymentAmount": Decimal(amount),
            "BankAccountCode": "BANK-GBP",
        },
        "PerformAllocation": True,
        "AllocationAmount": Decimal(amount),
        "ClientUniqueReference": f"CU-{reference}",
    }
    query.update(overrides)
    return query


def test_pay_and_allocate_posts_invoice_receipt_and_allocation_once(aiq):
    result = aiq.PostPayAndAllocateSalesInvoice(query=pay_and_allocate_query("WEB-1", "PAY-1"))
    assert result.Status == "Success"
    ids = result.Result
    assert ids.ClientUniqueReference == "CU-WEB-1"
    assert aiq.sandbox.state.outstanding(ids.InvoiceTransactionID) == 0
    assert aiq.sandbox.state.outstanding(ids.ReceiptTransactionID) == 0
    duplicate = aiq.PostPayAndAllocateSalesInvoice(query=pay_and_allocate_query("WEB-1", "PAY-2"))
    assert (duplicate.Status, duplicate.ErrorCode) == ("Failure", "DUPLICATE")
    same_receipt = aiq.PostPayAndAllocateSalesInvoice(
        query=pay_and_allocate_query("WEB-2", "PAY-1")
    )
    assert same_receipt.ErrorCode == "DUPLICATE"
    # Nothing of the refused calls was written.
    assert aiq.sandbox.state.transactions("WEB-2") == []
    assert aiq.sandbox.state.receipt_count("PAY-2") == 0


def test_pay_and_allocate_invoices_succeed_or_fail_one_by_one(aiq):
    queries = [
        pay_and_allocate_query("WEB-10", "PAY-10"),
        pay_and_allocate_query("WEB-10", "PAY-11"),  # duplicate invoice reference
        pay_and_allocate_query("WEB-12", "PAY-12", amount="50.00"),
    ]
    result = aiq.PostPayAndAllocateSalesInvoices(
        queries={"WSPostPayAndAllocateSalesInvoiceQuery": queries}
    )
    items = result.Result.WSResult2OfWSPostPayAndAllocateSalesInvoiceResult
    assert [i.Status for i in items] == ["Success", "Failure", "Success"]
    assert items[1].Result is None
    partial = items[2].Result
    assert aiq.sandbox.state.outstanding(partial.InvoiceTransactionID) == Decimal("70.00")
    assert aiq.sandbox.state.receipt_count("PAY-11") == 0
