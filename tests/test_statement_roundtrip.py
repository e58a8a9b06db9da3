"""Property: a generated statement written in each format (by the format's library writer
where it has one: bai2, ofxtools; by the format's published layout otherwise: camt.053,
MT940, QIF) reads back as the same money in, money out skipped, and balances that add up."""

import datetime as dt
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from payments.sources.bank_files import read_entries
from payments.sources.statement_rows import statement_items

START = dt.date(2025, 3, 1)
TEXT = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 -", min_size=1, max_size=30).map(
    lambda s: " ".join(s.split()) or "X"
)
ENTRY = st.tuples(
    st.integers(min_value=-5_000_000, max_value=5_000_000).filter(bool),  # pence, signed
    st.integers(min_value=0, max_value=27),  # day of the month - 1
    TEXT,
)
STATEMENT = st.tuples(st.integers(min_value=0, max_value=10_000_000), st.lists(ENTRY, max_size=25))
# BAI2 files without a group (no entries) are refused by the standard (and the library)
NON_EMPTY = st.tuples(
    st.integers(min_value=0, max_value=10_000_000), st.lists(ENTRY, min_size=1, max_size=25)
)
PROPERTY = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _money(pence: int) -> Decimal:
    return Decimal(pence).scaleb(-2)


def _read(content: bytes, name: str):
    parsed, entries = read_entries(content, name)
    return statement_items(parsed, entries, source="bank", filename=name, fallback_account="X")


def _check(parsed, opening: int, entries: list):
    assert not parsed.errors, [str(e) for e in parsed.errors]
    credits = [(_money(p), START + dt.timedelta(days=d)) for p, d, _ in entries if p > 0]
    got = [(i.amount, i.received_at.date()) for i in parsed.items]
    assert sorted(got) == sorted(credits)
    assert parsed.skipped == sum(1 for p, _, _ in entries if p < 0)
    texts = {t for p, _, t in entries if p > 0}
    assert all(any(t in i.description for t in texts) for i in parsed.items)


def _camt(opening: int, entries: list) -> bytes:
    ns = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"

    def el(parent, name, text=None, **attrs):
        node = etree.SubElement(parent, f"{{{ns}}}{name}", **attrs)
        if text is not None:
            node.text = text
        return node

    doc = etree.Element(f"{{{ns}}}Document", nsmap={None: ns})
    stmt = el(el(doc, "BkToCstmrStmt"), "Stmt")
    el(stmt, "Id", "P-1")
    el(el(el(stmt, "Acct"), "Id"), "IBAN", "GB29NWBK60161331926819")
    closing = opening + sum(p for p, _, _ in entries)
    for code, pence in (("OPBD", opening), ("CLBD", closing)):
        bal = el(stmt, "Bal")
        el(el(el(bal, "Tp"), "CdOrPrtry"), "Cd", code)
        el(bal, "Amt", f"{_money(abs(pence))}", Ccy="GBP")
        el(bal, "CdtDbtInd", "CRDT" if pence >= 0 else "DBIT")
    for n, (pence, day, text) in enumerate(entries):
        ntry = el(stmt, "Ntry")
        el(ntry, "Amt", f"{_money(abs(pence))}", Ccy="GBP")
        el(ntry, "CdtDbtInd", "CRDT" if pence > 0 else "DBIT")
        el(el(ntry, "Sts"), "Cd", "BOOK")
        el(el(ntry, "BookgDt"), "Dt", (START + dt.timedelta(days=day)).isoformat())
        el(ntry, "AcctSvcrRef", f"R{n}")
        details = el(el(ntry, "NtryDtls"), "TxDtls")
        el(el(details, "RmtInf"), "Ustrd", text)
    return etree.tostring(doc, xml_declaration=True, encoding="UTF-8")


def _mt940(opening: int, entries: list) -> bytes:
    def balance(tag, pence, day):
        mark = "C" if pence >= 0 else "D"
        return f":{tag}:{mark}{day:%y%m%d}GBP{str(_money(abs(pence))).replace('.', ',')}"

    lines = [":20:PROP", ":25:309950 12345678", ":28C:1/1", balance("60F", opening, START)]
    for n, (pence, day, text) in enumerate(entries):
        when = START + dt.timedelta(days=day)
        amount = str(_money(abs(pence))).replace(".", ",")
        mark = "C" if pence > 0 else "D"
        lines += [f":61:{when:%y%m%d}{when:%m%d}{mark}{amount}NTRFNONREF//B{n}", f":86:{text}"]
    closing = opening + sum(p for p, _, _ in entries)
    lines.append(balance("62F", closing, START + dt.timedelta(days=28)))
    return ("\r\n".join(lines) + "\r\n").encode()


def _qif(entries: list) -> bytes:
    lines = ["!Type:Bank"]
    for pence, day, text in entries:
        lines += [
            f"D{START + dt.timedelta(days=day):%d/%m/%Y}",
            f"T{_money(pence)}",
            f"M{text}",
            "^",
        ]
    return ("\n".join(lines) + "\n").encode()


def _bai2(opening: int, entries: list) -> bytes:
    from bai2 import bai2 as library
    from bai2 import constants, models

    codes = constants.TypeCodes
    closing = opening + sum(p for p, _, _ in entries)
    groups = []
    by_day: dict[int, list] = {}
    for entry in entries:
        by_day.setdefault(entry[1], []).append(entry)
    # BAI2 has no entry dates: one group (as-of date) per day, one account in each
    running = opening
    for day in sorted(by_day):
        start_balance = running
        running += sum(p for p, _, _ in by_day[day])
        account = models.Account(
            header=models.AccountIdentifier(
                customer_account_number="60161331926819",
                currency="GBP",
                summary_items=[
                    models.Summary(type_code=codes["010"], amount=start_balance),
                    models.Summary(type_code=codes["015"], amount=running),
                ],
            ),
            children=[
                models.TransactionDetail(
                    type_code=codes["195" if p > 0 else "495"],
                    amount=abs(p),
                    funds_type=constants.FundsType.unknown_availability,
                    bank_reference=f"B{day}-{n}",
                    customer_reference="",
                    text=text,
                )
                for n, (p, _, text) in enumerate(by_day[day])
            ],
        )
        account.update_totals()
        group = models.Group(
            header=models.GroupHeader(
                ultimate_receiver_id="DEMO",
                originator_id="NWBK",
                group_status=constants.GroupStatus.update,
                as_of_date=START + dt.timedelta(days=day),
                as_of_time=dt.time(23, 59),
                currency="GBP",
                as_of_date_modifier=constants.AsOfDateModifier.final_previous_day,
            ),
            children=[account],
        )
        group.update_totals()
        groups.append(group)
    assert running == closing
    document = models.Bai2File(
        header=models.Bai2FileHeader(
            sender_id="NWBK",
            receiver_id="DEMO",
            creation_date=START,
            creation_time=dt.time(6, 0),
            file_id="1",
            physical_record_length=80,
            block_size=1,
            version_number=2,
        ),
        children=groups,
    )
    document.update_totals()
    return library.write(document).encode()


def _ofx(entries: list) -> bytes:
    from ofxtools.header import make_header
    from ofxtools.models import (
        BANKACCTFROM,
        BANKMSGSRSV1,
        BANKTRANLIST,
        LEDGERBAL,
        OFX,
        SIGNONMSGSRSV1,
        SONRS,
        STATUS,
        STMTRS,
        STMTTRN,
        STMTTRNRS,
    )

    def stamp(day):
        return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)

    transactions = [
        STMTTRN(
            trntype="CREDIT" if pence > 0 else "DEBIT",
            dtposted=stamp(START + dt.timedelta(days=day)),
            trnamt=_money(pence),
            fitid=f"F{n}",
            name=text[:32],
            memo=text,
        )
        for n, (pence, day, text) in enumerate(entries)
    ]
    status = STATUS(code=0, severity="INFO")
    statement = STMTRS(
        curdef="GBP",
        bankacctfrom=BANKACCTFROM(bankid="601613", acctid="31926819", accttype="CHECKING"),
        banktranlist=BANKTRANLIST(
            *transactions, dtstart=stamp(START), dtend=stamp(START + dt.timedelta(days=28))
        ),
        ledgerbal=LEDGERBAL(balamt=Decimal("0.00"), dtasof=stamp(START)),
    )
    document = OFX(
        signonmsgsrsv1=SIGNONMSGSRSV1(
            sonrs=SONRS(status=status, dtserver=stamp(START), language="ENG")
        ),
        bankmsgsrsv1=BANKMSGSRSV1(STMTTRNRS(trnuid="1", status=status, stmtrs=statement)),
    )
    import xml.etree.ElementTree as ET

    body = ET.tostring(document.to_etree()).decode()
    return (str(make_header(version=220)) + body).encode()


@PROPERTY
@given(STATEMENT)
def test_camt053_round_trip(statement):
    opening, entries = statement
    parsed = _read(_camt(opening, entries), "p.xml")
    _check(parsed, opening, entries)
    assert parsed.statements[0].opening_balance == _money(opening)


@PROPERTY
@given(STATEMENT)
def test_mt940_round_trip(statement):
    opening, entries = statement
    _check(_read(_mt940(opening, entries), "p.sta"), opening, entries)


@PROPERTY
@given(NON_EMPTY)
def test_bai2_round_trip_through_the_bai2_writer(statement):
    opening, entries = statement
    _check(_read(_bai2(opening, entries), "p.bai"), opening, entries)


@PROPERTY
@given(STATEMENT)
def test_ofx_round_trip_through_the_ofxtools_writer(statement):
    opening, entries = statement
    _check(_read(_ofx(entries), "p.ofx"), opening, entries)


@PROPERTY
@given(STATEMENT)
def test_qif_round_trip(statement):
    opening, entries = statement
    _check(_read(_qif(entries), "p.qif"), opening, entries)
