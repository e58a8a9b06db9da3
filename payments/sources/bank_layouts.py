"""Ready CSV layouts for the exports UK and Irish business bank accounts offer, installed by
migration payments/0019 (and kept up to date by name). Each says where it came from.

Honest status: the column headings below are those the banks' online-banking CSV exports
use as described in the banks' help pages and in the import configurations of open-source
bookkeeping tools (GnuCash, Firefly III data importer, hledger rules shared by users); none was
checked here against a file downloaded from the bank. A clerk sees on the upload screen what
each layout expects, and a file that does not fit is refused with the column it lacks, so a
layout that drifted is found at the first upload, not in the books. Santander UK's business
download is a text report, QIF or OFX: use its QIF/OFX download (read without a layout).
"""

UK_DATE = "%d/%m/%Y"
LAYOUTS = [
    {
        "name": "Barclays (CSV export)",
        "column_map": {
            "date": "Date",
            "amount": "Amount",
            "reference": "Memo",
            "bank_reference": "Number",
        },
        "date_format": UK_DATE,
        "origin": "Barclays Online Banking 'Export' CSV: Number, Date, Account, Amount, "
        "Subcategory, Memo; signed amounts.",
    },
    {
        "name": "HSBC UK (CSV download)",
        "column_map": {"date": "#1", "reference": "#2", "amount": "#3"},
        "date_format": UK_DATE,
        "origin": "HSBC UK online banking 'Download transactions' CSV: no header row; date, "
        "description, signed amount.",
    },
    {
        "name": "Lloyds / Halifax / Bank of Scotland (CSV)",
        "column_map": {
            "date": "Transaction Date",
            "reference": "Transaction Description",
            "debit": "Debit Amount",
            "credit": "Credit Amount",
        },
        "date_format": UK_DATE,
        "origin": "Lloyds Banking Group online banking CSV: Transaction Date, Transaction "
        "Type, Sort Code, Account Number, Transaction Description, Debit Amount, Credit "
        "Amount, Balance.",
    },
    {
        "name": "NatWest / RBS / Ulster (CSV)",
        "column_map": {"date": "Date", "amount": "Value", "reference": "Description"},
        "date_format": "%d %b %Y|%d/%m/%Y",
        "origin": "NatWest Group online banking CSV: Date, Type, Description, Value, Balance, "
        "Account Name, Account Number; signed Value. Bankline customers: use MT940 or camt.053.",
    },
    {
        "name": "NatWest Bankline (CSV)",
        "column_map": {
            "date": "Date",
            "reference": "Narrative #1",
            "bank_reference": "Narrative #2",
            "debit": "Debit",
            "credit": "Credit",
            "currency": "Currency",
        },
        "date_format": "%d/%m/%y|%d/%m/%Y",
        "origin": "NatWest/RBS Bankline transaction CSV, 18 columns: Sort Code, Account Number, "
        "Account Alias, Account Short Name, Currency, Account Type, BIC, Bank Name, Branch "
        "Name, Date (dd/mm/yy), Narrative #1 to #5, Type, Debit, Credit (as bookkeeping "
        "tools that load it describe it).",
    },
    {
        "name": "Nationwide (CSV)",
        "column_map": {
            "date": "Date",
            "reference": "Description",
            "debit": "Paid out",
            "credit": "Paid in",
        },
        "date_format": "%d %b %Y",
        "origin": "Nationwide CSV download: four lines about the account (Account Name:, "
        "Account Balance:, Available Balance:) before Date, Transaction type, Description, "
        "Paid out, Paid in, Balance; amounts with £. The header row is found.",
    },
    {
        "name": "AIB (CSV)",
        "column_map": {
            "date": "Posted Transactions Date",
            "reference": "Description1|Description",
            "debit": "Debit Amount",
            "credit": "Credit Amount",
            "currency": "Posted Currency",
        },
        "date_format": "%d/%m/%Y|%d/%m/%y",
        "currency": "EUR",
        "origin": "AIB online banking CSV: Posted Account, Posted Transactions Date, "
        "Description1-3 (newer exports: one Description), Debit Amount, Credit Amount, Balance, "
        "Posted Currency, Transaction Type; headings with a leading space, dd/mm/yy or "
        "dd/mm/yyyy (as AIB importers' test files show).",
    },
    {
        "name": "Bank of Ireland (CSV)",
        "column_map": {
            "date": "Date",
            "reference": "Details",
            "debit": "Debit",
            "credit": "Credit",
        },
        "date_format": UK_DATE,
        "currency": "EUR",
        "origin": "Bank of Ireland 365 / Business On Line CSV: Date, Details, Debit, Credit, "
        "Balance.",
    },
    {
        "name": "Revolut Business (CSV)",
        "column_map": {
            "date": "Date completed (UTC)",
            "amount": "Amount",
            "currency": "Payment currency",
            "reference": "Reference",
            "payer_name": "Payer",
            "external_id": "ID",
            "status": "State",
        },
        "date_format": "%Y-%m-%d %H:%M:%S|%Y-%m-%d",
        "origin": "Revolut Business statement CSV: Date started (UTC), Date completed (UTC), "
        "ID, Type, State, Description, Reference, Payer, Card number, Orig currency/amount, "
        "Payment currency, Amount, Fee, Balance…; dates with or without a time; PENDING, "
        "DECLINED, REVERTED rows are not money in.",
    },
    {
        "name": "Wise Business (CSV)",
        "column_map": {
            "date": "Date",
            "amount": "Amount",
            "currency": "Currency",
            "reference": "Description",
            "bank_reference": "Payment Reference",
            "payer_name": "Payer Name",
            "external_id": "TransferWise ID",
        },
        "date_format": "%d-%m-%Y",
        "origin": "Wise statement CSV: TransferWise ID, Date (dd-mm-yyyy), Date Time, Amount, "
        "Currency, Description, Payment Reference, Running Balance, …, Payer Name; money in "
        "says its reference in Description ('Received money from X with reference Y').",
    },
    {
        "name": "Starling (CSV)",
        "column_map": {
            "date": "Date",
            "amount": "Amount (GBP)",
            "reference": "Reference",
            "payer_name": "Counter Party",
        },
        "date_format": UK_DATE,
        "origin": "Starling statement CSV: Date, Counter Party, Reference, Type, Amount (GBP), "
        "Balance (GBP), Spending Category, Notes.",
    },
    {
        "name": "Monzo Business (CSV)",
        "column_map": {
            "date": "Date",
            "amount": "Amount",
            "currency": "Currency",
            "reference": "Description",
            "payer_name": "Name",
            "external_id": "Transaction ID",
        },
        "date_format": UK_DATE,
        "origin": "Monzo CSV export: Transaction ID, Date, Time, Type, Name, Emoji, Category, "
        "Amount, Currency, Local amount, Local currency, Notes and #tags, Address, Receipt, "
        "Description, Category split, Money Out, Money In; the bank's narrative is Description "
        "(Notes and #tags are the account holder's own).",
    },
]


LAYOUTS.append(
    {
        "name": "SmartDebit collection report (CSV)",
        "source": "smartdebit",
        "column_map": {
            "date": "debit_date",
            "amount": "amount",
            "payer_reference": "reference_number",
            "reference": "reference_number",
            "payer_name": "account_name",
            "bank_reference": "transaction_ref",
        },
        "date_format": "%d/%m/%Y %H:%M|%d/%m/%Y",
        "origin": "SmartDebit's get_successful_collection_report fields as its API documents "
        "them (reference_number, account_name, debit_date 'dd/mm/yyyy hh:mm', amount, "
        "transaction_ref); not checked against a portal download. A file with a status "
        "column needs a copy of this layout mapping it.",
    }
)


def layouts_install(import_format_model) -> int:
    """Create or refresh the ready layouts (by name); a layout an admin renamed is left alone."""
    for layout in LAYOUTS:
        fields = {"currency": "GBP", **{k: v for k, v in layout.items() if k != "name"}}
        import_format_model.objects.update_or_create(name=layout["name"], defaults=fields)
    return len(LAYOUTS)
