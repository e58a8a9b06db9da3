"""BAI2 continuation records (88) joined as the BAI2 specification (version 2) says: after a
record ending in "/", the 88 begins the next field; a 16 record's text that runs to the end of
its fixed-length record is continued by the 88 directly (a word split across records is one
word again); a short fixed-length record's padding is the space between words; in
variable-length records each 88 is a line of its own (Citi's UK BAI2, the bai2 library's
example.bai2). Files shaped as the specification and the banks lay them out; each amount,
reference and text checked."""

from decimal import Decimal

from payments.sources.bank_files import detect_format, read_entries
from payments.sources.statement_rows import statement_items

# The specification's own example account (BAI2 v2, "sample file"): 65-character records, a
# lockbox deposit whose 16 ends after its availability ("/"), its bank and customer references
# and a text continued over two 88 records; the 03's summaries continued in an 88 as well.
# Control totals computed for these records (the library checks them).
SPEC = b"""01,122099999,123456789,040621,0200,1,65,,2/
02,031001234,122099999,1,040620,2359,,2/
03,0123456789,,010,+4350000,,,040,2830000,,/
88,072,1020000,,,074,500000,,/
16,115,450000,S,100000,200000,150000,,,/
16,115,10000000,S,5000000,4000000,1000000/
88,AX13612,B096132,AMALGAMATED CORP. LOCKBOX
88,DEPOSIT-MISC. RECEIVABLES
49,19150000,7/
98,19150000,1,9/
99,19150000,1,11/
"""

# Variable-length records (no record length in the 01), as Citi sends them: each 88 a line of
# the narrative, a text with a comma, a text begun in the 88 after "/", and a text continued
# over three records.
VARIABLE = b"""01,NWBKGB2L,DEMOLTD,250305,0600,1,,,2/
02,DEMOLTD,NWBKGB2L,1,250304,2359,GBP,2/
03,60161331926819,GBP,010,100000,,,015,180000,,/
16,195,25000,Z,BR0001,INV-1001,PAYMENT FROM ACME LTD
88,REF INV-1001 AND INV-1002, THANK YOU
16,195,35000,Z,BR0002,/
88,GLOBEX PLC INV-1003/2025
16,195,20000,Z,BR0003,,INITECH LIMITED
88,REMITTANCE ADVICE 447
88,FOR MARCH
49,360000,9/
98,360000,1,11/
99,360000,1,13/
"""


def _read(content):
    parsed, entries = read_entries(content, "statement.bai")
    return statement_items(parsed, entries, source="bank"), entries


def test_the_specifications_example_joins_its_continuations():
    assert detect_format(SPEC) == "bai2"
    parsed, entries = _read(SPEC)
    assert not parsed.errors
    assert [(e.amount, e.currency, e.booked.isoformat()) for e in entries] == [
        (Decimal("4500.00"), "USD", "2004-06-20"),
        (Decimal("100000.00"), "USD", "2004-06-20"),
    ]
    lockbox = entries[1]
    assert lockbox.bank_reference == lockbox.transaction_id == "AX13612"
    # the padding of the short first 88 is the space between LOCKBOX and DEPOSIT
    assert lockbox.remittance == "B096132 AMALGAMATED CORP. LOCKBOX DEPOSIT-MISC. RECEIVABLES"
    assert entries[0].remittance == ""
    header = parsed.statements[0]
    assert (header.account_id, header.opening_balance) == ("0123456789", Decimal("43500.00"))


def test_variable_length_records_are_lines_of_text():
    parsed, entries = _read(VARIABLE)
    assert not parsed.errors  # 1000.00 + 250.00 + 350.00 + 200.00 = 1800.00, the closing
    assert [(e.amount, e.bank_reference) for e in entries] == [
        (Decimal("250.00"), "BR0001"),
        (Decimal("350.00"), "BR0002"),
        (Decimal("200.00"), "BR0003"),
    ]
    assert [e.remittance for e in entries] == [
        "INV-1001 PAYMENT FROM ACME LTD REF INV-1001 AND INV-1002, THANK YOU",
        "GLOBEX PLC INV-1003/2025",
        "INITECH LIMITED REMITTANCE ADVICE 447 FOR MARCH",
    ]
    assert [i.description for i in parsed.items][2] == (
        "INITECH LIMITED REMITTANCE ADVICE 447 FOR MARCH"
    )
    assert parsed.statements[0].account_key == "601613 31926819"
