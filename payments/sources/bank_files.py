"""Which statement format a file is (by its content, not its name), and its reader.

Every reader returns (ParsedStatement, [StatementEntry]); statement_rows.statement_items turns
those into payments the same way for every format.
"""

import re

from core.gcpause import gc_paused
from payments.sources.bank_bai2 import read_bai2
from payments.sources.bank_camt import read_camt
from payments.sources.bank_csv import MAX_BYTES, parse_statement, read_table
from payments.sources.bank_mt940 import read_mt940
from payments.sources.bank_ofx import read_ofx
from payments.sources.bank_qif import read_qif
from payments.sources.statement_rows import ParsedStatement, StatementEntry, StatementError

# What the upload screen lists, in this order.
SUPPORTED_FORMATS = {
    "camt.053": "ISO 20022 camt.053 bank statement (XML); also camt.052 reports and camt.054 "
    "debit/credit notifications",
    "mt940": "SWIFT MT940 statement (Lloyds, NatWest Bankline, Barclays, HSBC, AIB, BOI …)",
    "bai2": "BAI2 balance and transaction report",
    "ofx": "OFX / Microsoft Money / Quicken web-connect download",
    "qif": "QIF (Quicken interchange) bank export",
    "csv": "CSV or Excel (.xlsx) export, read through a saved column layout",
}
SELF_DESCRIBING = frozenset({"camt.052", "camt.053", "camt.054", "mt940", "bai2", "ofx", "qif"})


def detect_format(content: bytes, filename: str = "") -> str:
    """camt.05x, mt940, bai2, ofx, qif, xlsx or csv, from the first bytes of the file."""
    if content[:4] == b"PK\x03\x04":
        return "xlsx"
    if content[:5] == b"%PDF-":
        raise StatementError(
            "A PDF statement cannot be read: download the bank's CSV, Excel, OFX, MT940 or "
            "camt.053 export instead."
        )
    head = content[:65536].decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \t\r\n")
    upper = head[:4096].upper()
    if head.startswith("<") and "<OFX" not in upper:
        found = re.search(r"camt\.(05[234])", head) or re.search(
            r"<(?:\w+:)?(BkToCstmrStmt|BkToCstmrAcctRpt|BkToCstmrDbtCdtNtfctn)\b", head
        )
        if found:
            name = found.group(1)
            return {
                "BkToCstmrStmt": "camt.053",
                "BkToCstmrAcctRpt": "camt.052",
                "BkToCstmrDbtCdtNtfctn": "camt.054",
            }.get(name, f"camt.{name}")
        raise StatementError(
            "This XML file is not a bank statement we read (camt.052/053/054 or OFX 2)."
        )
    if "OFXHEADER" in upper or "<OFX>" in upper:
        return "ofx"
    if head.lower().startswith(("!type:", "!account", "!option:", "!clear:")):
        return "qif"
    if re.search(r"(^|\n|\{4:\s*)\s*:20:", head) and re.search(r"\n:(25|60F|60M):", head):
        return "mt940"
    if re.match(r"01,[^,\n]*,[^,\n]*,\d{6},", head):
        return "bai2"
    return "csv"


def read_entries(
    content: bytes, filename: str, *, layout=None, source: str = "bank"
) -> tuple[ParsedStatement, list[StatementEntry]]:
    """Read any supported file. `layout` (an ImportFormat) is needed for CSV/Excel only."""
    if len(content) > MAX_BYTES:
        raise StatementError(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    if not content.strip():
        raise StatementError("The file is empty.")
    kind = detect_format(content, filename)
    if kind in SELF_DESCRIBING or kind.startswith("camt."):
        try:
            with gc_paused():  # a large file's rows: see core.gcpause
                return _read_self_describing(kind, content, layout)
        except StatementError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError, IndexError) as error:
            # a shape the reader did not foresee: the clerk gets the reason, never a 500
            raise StatementError(
                f"The {kind} file cannot be read: {type(error).__name__}: {error}"[:500]
            ) from None
    with gc_paused():
        return _read_layout(kind, content, filename, layout=layout, source=source)


def _read_self_describing(kind: str, content: bytes, layout):
    if kind.startswith("camt."):
        return read_camt(content)
    if kind == "mt940":
        return read_mt940(content)
    if kind == "bai2":
        return read_bai2(content)
    if kind == "ofx":
        return read_ofx(content)
    if kind == "qif":
        return read_qif(content, currency=(layout.currency if layout else "") or "GBP")
    raise StatementError(f"No reader for {kind} files.")


def _read_layout(kind: str, content: bytes, filename: str, *, layout, source: str):
    if layout is None:
        raise StatementError(
            "This looks like a CSV or Excel file: choose the saved layout (Bank / format) its "
            "columns follow."
        )
    name = filename if kind == "csv" else (filename or "statement.xlsx")
    if kind == "xlsx" and not name.lower().endswith((".xlsx", ".xlsm")):
        name += ".xlsx"
    return parse_statement(
        read_table(content, name),
        source=source,
        column_map=layout.column_map,
        date_format=layout.date_format,
        decimal_comma=layout.decimal_comma,
        currency=layout.currency or "GBP",
        header_row=layout.header_row,
        amounts_inverted=layout.amounts_inverted,
    )
