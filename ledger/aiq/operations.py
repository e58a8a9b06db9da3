"""Typed helpers over `AiqClient.call` for the operations the product uses.

Each returns plain Python (dicts keyed by AIQ's element names, lists, Decimal, int, datetime,
bytes) and raises the errors of ledger.aiq.errors. Parameter dicts use AIQ's element names as the
WSDL spells them (e.g. a receipt is {"CustomerCode", "CheckReference", "PaymentAmount",
"BankAccountCode", "PaymentDate", ...}). Writes take `replay_safe` (default False): pass True only
when replaying after an expired token cannot double the write (the outbox decides, after reading
back by external reference).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from ledger.aiq.errors import AiqAmbiguousError, AiqPermanentError
from ledger.aiq.results import get, result_statuses, unwrap

# AIQ's SalesReceipt (accountsIQ API wiki, SalesReceipt members): CheckReference is "the check
# reference/external reference of the transaction" (ours: the outbox reads a receipt back by
# it); Description "Cannot be longer than 500 characters"; LodgmentNumber, the receipt's
# lodgment (the bank's reference for the money), "Cannot be more than 50 characters long".
RECEIPT_DESCRIPTION_LENGTH = 500
LODGMENT_NUMBER_LENGTH = 50


def _list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def required_id(result, attr: str) -> int:
    """The id a write's answer must carry (AiqResult attribute `attr`). The one rule for every
    AIQ write, typed operation or outbox executor alike."""
    value = getattr(result, attr, None)
    if not value:
        # AIQ said Success but gave no id: we cannot know what it created. Treat like a lost
        # answer so the outbox reads back by external reference instead of sending again.
        raise AiqAmbiguousError(f"Success without {attr}", operation=result.operation)
    return int(value)


class AiqOperations:
    """Mixed into AiqClient; `self.call` does the work."""

    # --- reads: customers, lists ------------------------------------------------------------

    def get_customer(self, customer_code: str) -> dict:
        return self.call("GetCustomer", customerCode=customer_code.upper()).result

    def get_supplier(self, supplier_code: str) -> dict:
        return self.call("GetSupplier", supplierCode=supplier_code.upper()).result

    def get_supplier_list(self) -> list[dict]:
        """Every supplier, active and not (IsActive says which)."""
        return unwrap(self.call("GetSupplierList"), "Supplier")

    def get_new_customer_from_defaults(self) -> dict:
        return self.call("GetNewCustomerFromDefaults").result

    def get_active_customer_list(self) -> list[dict]:
        return unwrap(self.call("GetActiveCustomerList"), "Customer")

    def get_bank_list(self) -> list[dict]:
        return unwrap(self.call("GetBankList"), "Bank")

    def get_bank_account_balance(self, gl_account_code: str, at: datetime) -> Decimal:
        """What the bank account on this bank GL code holds at `at`, as AIQ books it."""
        result = self.call(
            "GetBankAccountBalance", GLAccountCode=gl_account_code, pointInTime=at
        ).result
        return Decimal(str(get(result, "Balance") or 0))

    def get_currency_exchange_rate(self, currency_code: str) -> Decimal:
        """The company's rate for `currency_code` today: units of it per base currency unit."""
        result = self.call("GetCurrencyExchangeRate", currencyCode=currency_code)
        return Decimal(str(result.result))

    def get_gl_account_list(self) -> list:
        """Each account is an array of strings: code, name, category."""
        return unwrap(self.call("GetGLAccountList"), "ArrayOfString")

    def get_tax_code_list(self) -> list[dict]:
        return unwrap(self.call("GetTaxCodeList"), "Tax")

    def get_credit_term_list(self) -> list[dict]:
        return unwrap(self.call("GetCreditTermList"), "CreditTerm")

    def get_department_list(self) -> list[dict]:
        """Every BI code (AIQ's departments), active and retired."""
        return unwrap(self.call("GetDepartmentList"), "Department")

    def get_department_by_id(self, department_id: str) -> dict:
        return self.call("GetDepartmentById", departmentId=department_id).result

    def get_departments_by_analysis_code(self, filters: dict[int, list[str]]) -> list[dict]:
        """The departments whose AnalysisCodeN is one of filters[N], for every N given."""
        query = {f"a{n}Filter": {"string": list(codes)} for n, codes in filters.items() if codes}
        return unwrap(self.call("GetDepartmentsByAnalysisCode", query=query), "Department")

    def get_analysis_dimension_setup(self) -> list[dict]:
        """The BI dimensions (Code, Description, DimensionCodes) in AnalysisCodeN order."""
        return unwrap(self.call("GetAnalysisDimensionSetup"), "WSAnalysisDimension")

    def get_customers_statement(
        self, *, up_to: datetime, customer_codes: list[str], show_zeros: bool = False
    ) -> list[dict]:
        result = self.call(
            "GetCustomersStatement",
            upTo=up_to,
            customerCodes={"string": [c.upper() for c in customer_codes]},
            showZeros=show_zeros,
        )
        return _list(result.result)

    def get_account_balance_information(
        self, *, at: datetime, account_ids: list[int] | None = None
    ) -> list[dict]:
        """Balances at `at`, of every account unless `account_ids` names some."""
        params = {"accountIDs": {"int": list(account_ids)}} if account_ids else {}
        result = self.call("GetAccountBalanceInformation", edt=at, **params)
        return unwrap(result, "AccountBalanceInformation")

    # --- reads: transactions, invoices, allocations -----------------------------------------

    def get_invoice(self, invoice_id: int) -> dict:
        return self.call("GetInvoice", invoiceID=invoice_id).result

    def get_invoices_by_ids(self, invoice_ids: list[int]) -> list[dict]:
        """The Invoice documents (with their Lines) of these AIQ invoice ids, in one call."""
        if not invoice_ids:
            return []
        result = self.call(
            "GetInvoicesBy",
            query={"InvoiceIDsFilter": {"int": list(invoice_ids)}, "Limit": len(invoice_ids)},
        )
        return unwrap(result, "Invoice")

    def get_posted_invoices_by_numbers(self, numbers: list[str]) -> list[dict]:
        """The posted sales invoices (Invoice documents, with Lines) whose numbers are among
        `numbers`, in one call (the receipts document's "identifying invoices" step)."""
        if not numbers:
            return []
        result = self.call(
            "GetInvoicesBy",
            query={
                "InvoiceNumbersFilter": {"string": list(numbers)},
                "Status": "Processed",
                "Limit": len(numbers),
            },
        )
        return unwrap(result, "Invoice")

    def get_transaction_by_invoice_id(self, invoice_id: int) -> list[dict]:
        """The lines of the transaction a posted item invoice became (its control line carries
        the transaction id, the gross and what is allocated)."""
        result = self.call("GetTransactionByInvoiceID", invoiceID=invoice_id)
        return unwrap(get(result.result, "Lines"), "TransactionLine")

    def get_transactions_by_external_reference(
        self, reference: str, *, from_date: datetime, to_date: datetime
    ) -> list[dict]:
        """The transactions carrying `reference` (the outbox's read-back), exact matches only."""
        result = self.call(
            "GetTransactionsByExternalReference",
            replay_safe=True,
            query={"ExternalReference": reference, "FromDate": from_date, "ToDate": to_date},
        )
        # AIQ's filter may be loose; only exact matches count for the read-back rule.
        rows = unwrap(result, "WSTransactionSummary")
        return [t for t in rows if get(t, "ExternalReference") == reference]

    def get_credit_notes_by_external_reference(self, reference: str) -> list[dict]:
        """Saved (maybe not yet posted) credit notes carrying `reference`, exact matches only."""
        result = self.call(
            "GetCreditNotesByExternalReference", replay_safe=True, externalReference=reference
        )
        return [n for n in unwrap(result, "CreditNote") if get(n, "ExternalReference") == reference]

    def get_transactions_modified_by(
        self, *, since: datetime, until: datetime, skip: int = 0
    ) -> list[dict]:
        """One page of the sales transactions changed in [since, until], from row `skip`."""
        result = self.call(
            "GetTransactionsModifiedBy", query={"FromDate": since, "ToDate": until, "Skip": skip}
        )
        return unwrap(result, "WSChangedTransactionSummary")

    def allocation_entries(self, paying_id: int) -> list[dict]:
        """The allocation entries of one paying transaction (a receipt or credit note): what it
        settles (AllocatedToTransactionID), how much (AllocationAmount), AIQ's AllocationId."""
        result = self.call("GetAllocationsByTransactionId", transactionId=str(paying_id))
        entries = []
        for txn in unwrap(result, "WSAllocationTransactionDTO"):
            if int(get(txn, "TransactionID", 0) or 0) != paying_id:
                continue
            entries += unwrap(get(txn, "AllocationEntries"), "WSAllocationEntryDTO")
        return entries

    def get_attached_document_list(self, master_type: str, master_id: int) -> list[dict]:
        """The documents attached to one record (WSDocumentHeader: DocumentID, Filename...)."""
        result = self.call(
            "GetAttachedDocumentList", masterType=master_type, masterID=str(master_id)
        )
        return unwrap(result, "WSDocumentHeader")

    def get_invoice_pdf(self, transaction_id: int) -> bytes:
        return self.call("GetInvoicePDFByTransactionID", transactionID=transaction_id).result

    def get_sales_receipt_pdf(self, transaction_id: int) -> bytes:
        return self.call("GetSalesReceiptPDFByTransactionID", transactionID=transaction_id).result

    def get_new_sales_invoice(self, customer_code: str) -> dict:
        return self.call("GetNewSalesInvoice", customerCode=customer_code.upper()).result

    def get_invoices_by_external_reference(self, reference: str) -> list[dict]:
        """Item invoices (saved or posted) carrying `reference`, exact matches only. Batch
        invoices go straight to the transactions, so they are found by
        get_transactions_by_external_reference instead."""
        result = self.call(
            "GetInvoicesByExternalReference", replay_safe=True, externalReference=reference
        )
        return [i for i in unwrap(result, "Invoice") if get(i, "ExternalReference") == reference]

    def get_new_batch_sales_invoice(self, customer_code: str) -> dict:
        return self.call("GetNewBatchSalesInvoice", customerCode=customer_code.upper()).result

    def get_new_purchases_invoice(self, supplier_code: str) -> dict:
        """A new purchase invoice (an Invoice with Ledger "Purchases") with the supplier's
        defaults; saved and posted like an item sales invoice."""
        return self.call("GetNewPurchasesInvoice", supplierCode=supplier_code.upper()).result

    def get_inter_company_connection_list(self) -> list[dict]:
        """The company's valid intercompany connections: each {"Local": {...}, "Remote": {...}}
        with EntityID, EntityName, EntityBaseCurrencyCode, AccountID, AccountCode, AccountName,
        AccountCurrencyCode."""
        return unwrap(self.call("GetInterCompanyConnectionList"), "WSInterCompanyConnection")

    def get_new_sales_credit_note(self, customer_code: str) -> dict:
        return self.call("GetNewSalesCreditNote", customerCode=customer_code.upper()).result

    # --- writes -------------------------------------------------------------------------------

    def update_department(
        self, department_id: str, *, description: str, active: bool, replay_safe=False
    ) -> None:
        """Rename a BI code and/or retire (active=False) or activate it."""
        self.call(
            "UpdateDepartment",
            replay_safe=replay_safe,
            departmentID=department_id,
            newDescription=description,
            active=active,
        )

    def update_customer(self, customer: dict, *, create: bool, replay_safe=False) -> None:
        self.call("UpdateCustomer", replay_safe=replay_safe, customer=customer, create=create)

    def save_invoice_get_back_invoice_id(
        self, invoice: dict, *, create: bool = True, replay_safe=False
    ) -> int:
        result = self.call(
            "SaveInvoiceGetBackInvoiceID", replay_safe=replay_safe, invoice=invoice, create=create
        )
        return required_id(result, "invoice_id")

    def post_invoice(self, invoice_id: int, *, replay_safe=False) -> int:
        result = self.call(
            "PostInvoiceGetBackTransactionID", replay_safe=replay_safe, invoiceID=invoice_id
        )
        return required_id(result, "transaction_id")

    def create_batch_sales_invoice(self, invoice: dict, *, replay_safe=False) -> int:
        """One BatchSalesInvoice posted straight to the ledger -> its transaction id."""
        result = self.call(
            "CreateBatchSalesInvoiceGetBackTransactionID", replay_safe=replay_safe, inv=invoice
        )
        return required_id(result, "transaction_id")

    def create_batch_sales_invoices_bulk(
        self, invoices: list[dict], *, replay_safe=False
    ) -> list[tuple[int, str]]:
        """Many BatchSalesInvoices in one call; per invoice, in order, (transaction id, "")
        or (0, AIQ's message) where AIQ refused that one."""
        result = self.call(
            "CreateBatchSalesInvoiceBulkGetBackTransactionIDs",
            replay_safe=replay_safe,
            invoices={"BatchSalesInvoice": list(invoices)},
        )
        ids = [int(i or 0) for i in unwrap(result.transaction_ids, "int")]
        statuses = unwrap(result.result, "WSResultStatus")
        if len(ids) != len(invoices) or len(statuses) not in (0, len(invoices)):
            raise AiqAmbiguousError(
                f"{len(ids)} transaction ids for {len(invoices)} invoices",
                operation=result.operation,
            )
        out = []
        for position, transaction_id in enumerate(ids):
            status = statuses[position] if statuses else {}
            refused = get(status, "Status") == "Failure"
            message = (get(status, "ErrorMessage") or "refused") if refused else ""
            if not transaction_id and not refused:
                message = "Success without a transaction id"
            out.append((0 if refused else transaction_id, message))
        return out

    def post_pay_and_allocate_sales_invoice(self, query: dict, *, replay_safe=False) -> dict:
        """A batch invoice, its receipt and their allocation in one call (an already-paid
        order): {"InvoiceTransactionID", "ReceiptTransactionID", "ClientUniqueReference"}."""
        result = self.call("PostPayAndAllocateSalesInvoice", replay_safe=replay_safe, query=query)
        return result.result or {}

    def save_sales_receipt(self, receipt: dict, *, replay_safe=False) -> int:
        """Receipts need CustomerCode, CheckReference (our external reference), BankAccountCode."""
        result = self.call(
            "SaveSalesReceiptGetBackTransactionID", replay_safe=replay_safe, salesReceipt=receipt
        )
        return required_id(result, "transaction_id")

    def allocate_transactions(
        self,
        *,
        transaction_id_1: int,
        transaction_id_2: int,
        reference: str,
        amount: Decimal,
        date: datetime,
        replay_safe=False,
    ) -> None:
        self.call(
            "AllocateTransactions",
            replay_safe=replay_safe,
            transactionID_1=transaction_id_1,
            transactionID_2=transaction_id_2,
            allocationReference=reference,
            allocationAmount=amount,
            allocationDate=date,
        )

    def allocate_transactions_with_discount(
        self,
        *,
        transaction_id_1: int,
        transaction_id_2: int,
        reference: str,
        amount: Decimal,
        discount: Decimal,
        date: datetime,
        replay_safe=False,
    ) -> None:
        self.call(
            "AllocateTransactionsWithDiscount",
            replay_safe=replay_safe,
            transactionID_1=transaction_id_1,
            transactionID_2=transaction_id_2,
            allocationReference=reference,
            allocationAmount=amount,
            allocationDate=date,
            discountAmount=discount,
        )

    def unallocate_transactions(
        self, transaction_ids: list[int], *, replay_safe=False, failed_items_ok=False
    ) -> list:
        """One WSResultStatus per transaction; a failed one raises AiqPermanentError unless
        failed_items_ok. AIQ reports an item failed when its transaction has no allocation
        (left): unallocating both sides of a pair, the second always "fails" because the first
        freed it. The outbox's unallocate therefore passes failed_items_ok and lets its
        read-back (is the allocation still listed?) decide, never the answer."""
        result = self.call(
            "UnallocateTransactions",
            replay_safe=replay_safe,
            transactionIDs={"int": list(transaction_ids)},
        )
        failed = result_statuses(result.result)
        if failed and not failed_items_ok:
            first = failed[0]
            raise AiqPermanentError(
                first.get("ErrorMessage") or "unallocation failed",
                operation="UnallocateTransactions",
                error_code=first.get("ErrorCode") or "",
                result=result,
            )
        return _list(result.result)

    def save_credit_note_get_back_id(
        self, credit_note: dict, *, create: bool = True, replay_safe=False
    ) -> int:
        result = self.call(
            "SaveCreditNoteGetBackCreditNoteID",
            replay_safe=replay_safe,
            creditNote=credit_note,
            create=create,
        )
        return required_id(result, "credit_note_id")

    def post_credit_notes(self, credit_note_ids: list[int], *, replay_safe=False) -> list[int]:
        result = self.call(
            "PostCreditNotesGetBackTransactionIDs",
            replay_safe=replay_safe,
            creditNoteIDs={"int": list(credit_note_ids)},
        )
        ids = [i for i in unwrap(result.transaction_ids, "int") if i]
        if len(ids) != len(credit_note_ids):
            raise AiqAmbiguousError(
                f"{len(ids)} transaction ids for {len(credit_note_ids)} credit notes",
                operation=result.operation,
            )
        return [int(i) for i in ids]

    def save_purchase_payment(self, payment: dict, *, replay_safe=False) -> int:
        """A supplier payment (SupplierCode, CheckReference = our external reference,
        BankAccountCode, PaymentAmount, PaymentDate) -> its transaction id."""
        result = self.call(
            "SavePurchasePaymentGetBackTransactionID",
            replay_safe=replay_safe,
            purchasePayment=payment,
        )
        return required_id(result, "transaction_id")

    def save_sundry_receipt(self, entry: dict, *, replay_safe=False) -> int:
        """One sundry receipt (a WSSundryReceiptPayment) -> its one transaction id."""
        result = self.call(
            "SaveSundryReceiptPaymentsGetBackTransactionIDs",
            replay_safe=replay_safe,
            entries={"WSSundryReceiptPayment": [entry]},
        )
        ids = result.transaction_ids or []
        if len(ids) != 1:
            # One entry sent, not one id back: as ambiguous as a missing id (required_id's rule).
            raise AiqAmbiguousError(
                f"{len(ids)} transaction ids for one sundry receipt", operation=result.operation
            )
        return required_id(SimpleNamespace(operation=result.operation, id=ids[0]), "id")

    def post_sales_debit_journal(self, journal: dict, *, replay_safe=False) -> int:
        result = self.call(
            "PostSalesDebitJournalGetBackTransactionID", replay_safe=replay_safe, journal=journal
        )
        return required_id(result, "transaction_id")

    def post_sales_credit_journal(self, journal: dict, *, replay_safe=False) -> int:
        result = self.call(
            "PostSalesCreditJournalGetBackTransactionID", replay_safe=replay_safe, journal=journal
        )
        return required_id(result, "transaction_id")

    def create_general_journal(self, journal: dict, *, replay_safe=False) -> int:
        """A general journal (lines of GLAccountCode with Debit or Credit, debits = credits)
        -> its transaction id."""
        result = self.call(
            "CreateGeneralJournalGetBackTransactionID", replay_safe=replay_safe, journal=journal
        )
        return required_id(result, "transaction_id")

    def attach_document(self, document: dict, *, replay_safe=False) -> None:
        """document = {"Header": {...WSDocumentHeader}, "Content": {...}} as the WSDL says."""
        self.call("AttachDocument", replay_safe=replay_safe, document=document)
