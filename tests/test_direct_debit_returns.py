"""SmartDebit collections and the Bacs reports that follow them: a collection report imports
collected money only; an ARUDD return reverses the payment it returns (a compensating refund
for approval when it was already booked in AIQ, never a delete); ADDACS flags the payer;
applying the same report twice changes nothing."""

from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command

from ledger.models import BankAccount, Customer, Receipt
from payments.models import DirectDebitNotice, ImportFormat, Payment, Refund
from payments.services.direct_debit_returns import direct_debit_notices_apply
from payments.services.statements import statement_import, statement_preview
from payments.sources.bacs_reports import bacs_report_read
from staff.models import AuditEntry

REPORT = (
    "Payer Reference,Customer Name,Collection Date,Amount,Status,Transaction ID\n"
    "ACME0001,Acme Ltd,01/03/2025,120.00,Successful,SD-1\n"
    "GLOBEX01,Globex plc,01/03/2025,75.50,Successful,SD-2\n"
    "INITECH1,Initech,01/03/2025,30.00,Failed,SD-3\n"
)

# Bacs ARUDD advice, as Bacs publishes the XML (BACSDocument > Data > ARUDD > Advice)
ARUDD = b"""<?xml version="1.0" encoding="UTF-8"?>
<BACSDocument xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <Data><ARUDD>
  <Header reportType="REFT1019" adviceNumber="999" currentProcessingDate="2025-03-06"/>
  <AddresseeInformation name="DEMO LTD"/>
  <ServiceLicenseInformation userName="DEMO LTD" userNumber="123456"/>
  <Advice><OriginatingAccountRecords><OriginatingAccountRecord>
   <OriginatingAccount name="DEMO LTD" number="31926819" sortCode="601613" type="0"/>
   <ReturnedDebitItem ref="ACME0001" transCode="17" returnCode="0" returnDescription="REFER TO PAYER"
       originalProcessingDate="2025-03-01" valueOf="120.00" currency="GBP">
     <PayerAccount number="12345678" ref="ACME0001" name="ACME LTD" sortCode="400515" bankName="HSBC"/>
   </ReturnedDebitItem>
   <ReturnedDebitItem ref="GLOBEX01" transCode="17" returnCode="6" returnDescription="NO INSTRUCTION"
       originalProcessingDate="2025-03-01" valueOf="75.50" currency="GBP">
     <PayerAccount number="87654321" ref="GLOBEX01" name="GLOBEX PLC" sortCode="200000"/>
   </ReturnedDebitItem>
  </OriginatingAccountRecord></OriginatingAccountRecords></Advice>
 </ARUDD></Data>
</BACSDocument>
"""

ADDACS = b"""<?xml version="1.0" encoding="UTF-8"?>
<BACSDocument><Data><MessagingAdvices>
 <MessagingHeader report-type="REFT1026" advice-number="12" report-generation-date="2025-03-07"/>
 <MessagingAdvice user-number="123456" record-type="A" effective-date="2025-03-07"
   reference="ACME0001" payer-name="ACME LTD" payer-account-number="12345678"
   payer-sort-code="400515" reason-code="1" aosn="12"/>
</MessagingAdvices></Data></BACSDocument>
"""


@pytest.fixture
def collected(entity, alice):
    layout = ImportFormat.objects.create(
        name="SmartDebit collections",
        source="smartdebit",
        column_map={
            "payer_reference": "Payer Reference",
            "payer_name": "Customer Name",
            "date": "Collection Date",
            "amount": "Amount",
            "status": "Status",
            "external_id": "Transaction ID",
            "reference": "Payer Reference",
        },
        currency="GBP",
    )
    content = REPORT.encode()
    preview = statement_preview(
        user=alice, import_format=layout, filename="sd.csv", content=content
    )
    assert preview.ok and preview.parsed.skipped == 1  # the failed collection is no money
    statement_import(user=alice, batch=preview.batch, content=content)
    return {p.payer_reference: p for p in Payment.objects.all()}


def _booked(entity, payment, code):
    bank = BankAccount.objects.create(
        entity=entity, bank_code="1200", bank_account_code="BANK1", name="Main", currency="GBP"
    )
    customer = Customer.objects.create(entity=entity, code=code, name=code, currency="GBP")
    receipt = Receipt.objects.create(
        entity=entity,
        customer=customer,
        bank_account=bank,
        check_reference=f"RCPT-{payment.pk}",
        aiq_transaction_id=9001,
        currency="GBP",
        payment_date=date(2025, 3, 1),
        amount=payment.amount,
        unallocated_amount=payment.amount,
    )
    payment.receipt, payment.customer = receipt, customer
    payment.match_state = Payment.MatchState.SENT
    payment.save()
    return receipt


def test_a_collection_report_imports_collected_money_with_the_payer_reference(collected):
    assert set(collected) == {"ACME0001", "GLOBEX01"}
    assert collected["ACME0001"].amount == Decimal("120.00")
    assert collected["ACME0001"].source == "smartdebit"


def test_an_arudd_return_reverses_the_payment_never_deleting_it(entity, collected):
    receipt = _booked(entity, collected["ACME0001"], "ACME")
    kind, notices = bacs_report_read(ARUDD)
    assert kind == "arudd" and [n.payer_reference for n in notices] == ["ACME0001", "GLOBEX01"]
    result = direct_debit_notices_apply(notices=notices, filename="arudd.xml")
    assert len(result.reversed) == 2 and len(result.refunds) == 1
    acme = Payment.objects.get(payer_reference="ACME0001")
    globex = Payment.objects.get(payer_reference="GLOBEX01")
    assert acme.status == globex.status == Payment.Status.FAILED
    assert Payment.objects.count() == 2  # nothing deleted
    # booked in AIQ: the compensating entry is a refund for a second person to approve
    refund = Refund.objects.get()
    assert (refund.kind, refund.receipt, refund.amount, refund.state) == (
        Refund.Kind.EXTERNAL,
        receipt,
        Decimal("120.00"),
        Refund.State.REQUESTED,
    )
    assert "ARUDD code 0: REFER TO PAYER" in refund.reason
    notice = DirectDebitNotice.objects.get(payer_reference="ACME0001")
    assert notice.payment == acme and notice.refund == refund
    assert notice.payer_account == "400515 12345678"
    audit = AuditEntry.objects.filter(action="payment.status", object_id=str(acme.pk)).get()
    assert audit.before == {"status": "succeeded"}

    again = direct_debit_notices_apply(notices=bacs_report_read(ARUDD)[1])
    assert again.already_known == 2 and not again.reversed
    assert Refund.objects.count() == 1


def test_addacs_flags_the_payer_and_the_command_applies_a_report(
    entity, collected, tmp_path, capsys
):
    path = tmp_path / "addacs.xml"
    path.write_bytes(ADDACS)
    call_command("import_bacs_report", str(path))
    assert "addacs: 1 new notice(s)" in capsys.readouterr().out
    flag = DirectDebitNotice.objects.get(kind="addacs")
    assert (flag.payer_reference, flag.code) == ("ACME0001", "1")
    assert flag.description == "Instruction cancelled by the payer"
    assert Payment.objects.get(payer_reference="ACME0001").status == "succeeded"
    assert AuditEntry.objects.filter(action="directdebit.flag").count() == 1
