"""Customers, item and batch invoices, credit notes, journals, documents and real PDFs."""

import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

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


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def new_customer(aiq, code="NEWCO"):
    customer = aiq.GetNewCustomerFromDefaults().Result
    customer.Code = code
    customer.Name = "New Co Ltd"
    customer.Email = "ap@newco.example"
    assert aiq.UpdateCustomer(customer=customer, create=True).Result is True
    return aiq.GetCustomer(customerCode=code).Result


def test_customers_need_upper_case_unique_codes_and_fresh_row_versions(aiq):
    defaults = aiq.GetNewCustomerFromDefaults().Result
    assert (defaults.CurrencyCode, defaults.BankCode, defaults.IsActive) == ("GBP", "1200", True)
    defaults.Code, defaults.Name = "lower", "Lower Ltd"
    refused = aiq.UpdateCustomer(customer=defaults, create=True)
    assert refused.Status == "Failure" and "upper case" in refused.ErrorMessage
    customer = new_customer(aiq)
    assert aiq.UpdateCustomer(customer=customer, create=True).ErrorCode == "DUPLICATE"
    stale = customer.RowVersionNumber
    customer.Name = "New Co Group Ltd"
    assert aiq.UpdateCustomer(customer=customer, create=False).Status == "Success"
    customer.RowVersionNumber = stale
    customer.Name = "Lost update"
    conflict = aiq.UpdateCustomer(customer=customer, create=False)
    assert conflict.ErrorCode == "CONCURRENCY_ERROR"
    assert aiq.GetCustomer(customerCode="newco").Result.Name == "New Co Group Ltd"
    defaults.Code, defaults.BankCode = "BADBANK", "9999"
    assert "BankCode" in aiq.UpdateCustomer(customer=defaults, create=True).ErrorMessage
    codes = [c.Code for c in aiq.GetActiveCustomerList().Result.Customer]
    assert "NEWCO" in codes and len(codes) >= 21


def test_item_invoice_new_saved_posted_then_pdf(aiq):
    new_customer(aiq)
    invoice = aiq.GetNewSalesInvoice(customerCode="NEWCO").Result
    invoice.ExternalReference = "ORDER-77"
    invoice.Lines = {
        "InvoiceLine": [
            {"StockItemDescription": "Consulting day", "InvoicedQuantity": Decimal(2),
             "StockItemPrice": Decimal("500.00"), "TaxCode": "T1", "GLAccountCode": "4010"},
        ]
    }  # fmt: skip
    saved = aiq.SaveInvoiceGetBackInvoiceID(invoice=invoice, create=True)
    assert saved.SaveInvoiceGetBackInvoiceIDResult.Status == "Success"
    stored = aiq.GetInvoice(invoiceID=saved.invoiceID).Result
    assert (stored.Status, stored.NetAmount, stored.TaxAmount, stored.GrossAmount) == (
        "Created", Decimal("1000.00"), Decimal("200.00"), Decimal("1200.00"),
    )  # fmt: skip
    stored.Notes = "Thank you"
    assert (
        aiq.SaveInvoiceGetBackInvoiceID(invoice=stored, create=False).invoiceID == stored.InvoiceID
    )
    posted = aiq.PostInvoiceGetBackTransactionID(invoiceID=saved.invoiceID)
    assert posted.transactionID > 0
    again = aiq.PostInvoiceGetBackTransactionID(invoiceID=saved.invoiceID)
    assert again.PostInvoiceGetBackTransactionIDResult.Status == "Failure"
    assert again.transactionID == 0
    assert aiq.GetInvoice(invoiceID=saved.invoiceID).Result.Status == "Processed"
    by_reference = aiq.GetInvoicesByExternalReference(externalReference="ORDER-77").Result
    assert [i.InvoiceID for i in by_reference.Invoice] == [saved.invoiceID]
    transaction = aiq.GetTransaction(transactionID=posted.transactionID).Result
    amounts = [line.Amount for line in transaction.Lines.TransactionLine]
    assert sum(amounts) == 0 and Decimal("1200.00") in amounts
    text = pdf_text(aiq.GetInvoicePDFByTransactionID(transactionID=posted.transactionID).Result)
    for expected in (stored.InvoiceNumber, "NEWCO", "New Co Ltd", "1,200.00", "Consulting day"):
        assert expected in text


def test_batch_invoice_and_its_pdf(aiq):
    batch = aiq.GetNewBatchSalesInvoice(customerCode="ACME").Result
    batch.ExternalReference = "BATCH-1"
    batch.Lines = {
        "BatchSalesInvoiceLine": [
            {"GLAccountCode": "4000", "Description": "Annual licence",
             "NetAmount": Decimal("99.99"), "TaxAmount": Decimal("20.00")},
        ]
    }  # fmt: skip
    result = aiq.CreateBatchSalesInvoiceGetBackTransactionID(inv=batch)
    assert result.CreateBatchSalesInvoiceGetBackTransactionIDResult.Result.startswith("INV-")
    summary = aiq.GetTransactionsByExternalReference(query={"ExternalReference": "BATCH-1"})
    [found] = summary.Result.WSTransactionSummary
    assert (found.IsBatchInvoiceOrNote, found.OutstandingAmount) == (True, Decimal("119.99"))
    text = pdf_text(aiq.GetInvoicePDFByTransactionID(transactionID=result.transactionID).Result)
    assert "Acme Widgets Ltd" in text and "119.99" in text


def test_credit_note_flow_and_allocation_against_an_invoice(aiq):
    note = aiq.GetNewSalesCreditNote(customerCode="ACME").Result
    note.ExternalReference = "CN-REF-1"
    note.Lines = {"InvoiceLine": [{"StockItemDescription": "Refund", "NetAmount": Decimal("10.00"),
                                   "TaxCode": "T1"}]}  # fmt: skip
    saved = aiq.SaveCreditNoteGetBackCreditNoteID(creditNote=note, create=True)
    assert saved.creditNoteID > 0
    posted = aiq.PostCreditNotesGetBackTransactionIDs(creditNoteIDs={"int": [saved.creditNoteID]})
    assert [s.Status for s in posted.PostCreditNotesGetBackTransactionIDsResult.WSResultStatus] == [
        "Success"
    ]
    [transaction_id] = posted.transactionIDs.int
    assert aiq.sandbox.state.outstanding(transaction_id) == Decimal("-12.00")
    invoice = aiq.GetInvoicesByCustomerCode(customerCode="ACME").Result.Invoice[0]
    invoice_txn = aiq.GetTransactionsByExternalReference(
        query={"ExternalReference": invoice.ExternalReference}
    ).Result.WSTransactionSummary[0]
    allocated = aiq.AllocateTransactions(
        transactionID_1=invoice_txn.TransactionID, transactionID_2=transaction_id,
        allocationAmount=Decimal("12.00"),
    )  # fmt: skip
    assert allocated.Status == "Success"
    assert aiq.GetCreditNote(creditNoteID=saved.creditNoteID).Result.Status == "Processed"
    found = aiq.GetCreditNotesByExternalReference(externalReference="CN-REF-1").Result.CreditNote
    assert len(found) == 1
    text = pdf_text(aiq.GetInvoicePDFByTransactionID(transactionID=transaction_id).Result)
    assert "Credit note" in text and "12.00" in text


def test_receipt_pdf_names_receipt_customer_amount_and_allocations(aiq):
    result = aiq.SaveSalesReceiptGetBackTransactionID(
        salesReceipt={"CustomerCode": "BRIGHT", "CheckReference": "PDF-RCPT",
                      "PaymentAmount": Decimal("75.50"), "BankAccountCode": "BANK-GBP"}
    )  # fmt: skip
    text = pdf_text(
        aiq.GetSalesReceiptPDFByTransactionID(transactionID=result.transactionID).Result
    )
    assert "Receipt REC-" in text and "Bright Futures Nursery" in text and "75.50" in text
    wrong = aiq.GetSalesReceiptPDFByTransactionID(transactionID=1)
    assert wrong.Status == "Failure"


def test_journals_must_balance(aiq):
    refund = aiq.PostSalesDebitJournalGetBackTransactionID(
        journal={"AccountCode": "ACME", "ExternalReference": "REFUND-1",
                 "Lines": {"WSLedgerJournalLine": [
                     {"GLAccountCode": "1200", "Description": "Refund", "Amount": Decimal("15.00")}
                 ]}}
    )  # fmt: skip
    assert aiq.sandbox.state.outstanding(refund.transactionID) == Decimal("15.00")
    credit = aiq.PostSalesCreditJournalGetBackTransactionID(
        journal={"AccountCode": "ACME", "ExternalReference": "WRITEOFF-1",
                 "Lines": {"WSLedgerJournalLine": [
                     {"GLAccountCode": "8100", "Amount": Decimal("3.00")}]}}
    )  # fmt: skip
    assert aiq.sandbox.state.outstanding(credit.transactionID) == Decimal("-3.00")
    unbalanced = aiq.CreateGeneralJournalGetBackTransactionID(
        journal={"ExternalReference": "GJ-1", "Lines": {"GeneralJournalLine": [
            {"GLAccountCode": "7500", "Debit": Decimal("5.00")},
            {"GLAccountCode": "1200", "Credit": Decimal("4.99")}]}}
    )  # fmt: skip
    status = unbalanced.CreateGeneralJournalGetBackTransactionIDResult
    assert status.Status == "Failure" and "does not balance" in status.ErrorMessage
    balanced = aiq.CreateGeneralJournalGetBackTransactionID(
        journal={"ExternalReference": "GJ-1", "Lines": {"GeneralJournalLine": [
            {"GLAccountCode": "7500", "Debit": Decimal("5.00")},
            {"GLAccountCode": "1200", "Credit": Decimal("5.00")}]}}
    )  # fmt: skip
    assert balanced.transactionID > 0
    types = [t["type"] for t in aiq.sandbox.state.transactions("GJ-1")]
    assert types == ["GeneralJournal"]


def test_attach_document_to_a_transaction(aiq):
    summary = aiq.GetTransactionsByExternalReference(query={"ExternalReference": "SO-2001"})
    transaction_id = summary.Result.WSTransactionSummary[0].TransactionID
    document = {"Header": {"MasterType": "Transaction", "MasterID": str(transaction_id),
                           "Filename": "breakdown.csv"},
                "Content": {"Content": b"job,amount\nA,1.00\n", "Comments": "breakdown"}}  # fmt: skip
    assert aiq.AttachDocument(document=document).Status == "Success"
    document["Header"]["MasterID"] = "999999"
    assert aiq.AttachDocument(document=document).Status == "Failure"
    state = aiq.sandbox.state.snapshot("demo")
    assert state["entities"]["demo"]["documents"] == 1
