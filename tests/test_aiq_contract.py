"""The committed WSDLs against AIQ's own sample envelopes (tests/aiq_samples), operation by operation.

For every operation of both WSDLs: the sample request and response validate against the WSDL's
schema (lxml XMLSchema, strict: names, order, nesting, types, enumerations), zeep deserialises them
with the WSDL, and what zeep reads from the sample response is the sample's content, field by field.
"""

from __future__ import annotations

import base64
import re
import warnings
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import zeep
from lxml import etree

from ledger.aiq import wsdl as aiq_wsdl
from ledger.aiq.results import to_plain

HERE = Path(__file__).resolve().parent
SAMPLES = HERE / "aiq_samples"
TNS = aiq_wsdl.TNS
XS = "http://www.w3.org/2001/XMLSchema"
VERSIONS = {"1.1": "ops-1_1", "2.0": "ops-2_0"}

# Named by issue 3 and the reference documents; PostSalesCreditJournalGetBackTransactionID is the
# write-off. 2.0 has TokenGet/TokenRefresh instead of Login.
REQUIRED = """Login GetTransaction GetTransactionsByExternalReference GetTransactionsModifiedBy
GetInvoicesBy GetInvoicesByCustomerCode GetInvoicesByExternalReference GetInvoice GetCreditNote
GetCreditNotesByExternalReference GetNewCustomerFromDefaults UpdateCustomer GetCustomer
GetActiveCustomerList GetCustomersStatement GetAccountBalanceInformation GetBankList
GetGLAccountList GetTaxCodeList GetNewBatchSalesInvoice CreateBatchSalesInvoiceGetBackTransactionID
CreateBatchSalesInvoiceBulkGetBackTransactionIDs
GetNewSalesInvoice SaveInvoiceGetBackInvoiceID PostInvoiceGetBackTransactionID GetNewPurchasesInvoice
AttachDocument GetInvoicePDFByTransactionID GetSalesReceiptPDFByTransactionID
SaveSalesReceiptGetBackTransactionID AllocateTransactions AllocateTransactionsWithDiscount
UnallocateTransactions GetAllocationsByTransactionId PostPayAndAllocateSalesInvoice
PostPayAndAllocateSalesInvoices GetNewSalesCreditNote SaveCreditNote SaveCreditNoteGetBackCreditNoteID
PostCreditNotesGetBackTransactionIDs GetGLDefaults SaveGLDefaults
PostSalesDebitJournalGetBackTransactionID PostSalesCreditJournalGetBackTransactionID
CreateGeneralJournalGetBackTransactionID GetAnalysisDimensionSetup GetDepartmentById
GetDepartmentList GetDepartmentsByAnalysisCode UpdateDepartment GetInterCompanyConnectionList""".split()

# Defects in AIQ's own samples, each checked to still be exactly that defect (so the list cannot
# silently hide a regression): the Postman author typed a date where the API takes a dateTime.
KNOWN_SAMPLE_DEFECTS = {
    ("1.1", "GetAllocationsBetween", "request.xml"): "'2023-01-01' is not a valid value of the "
    "atomic type 'xs:dateTime'",
}

_cache: dict = {}


def loaded(version: str):
    if version not in _cache:
        path = aiq_wsdl.BUNDLED[version]
        tree = etree.parse(str(path))
        schema = etree.XMLSchema(tree.find(f".//{{{XS}}}schema"))
        client = zeep.Client(str(path))
        binding = client.wsdl.bindings[aiq_wsdl.BINDING]
        _cache[version] = (tree, schema, client, binding)
    return _cache[version]


def operations(version: str) -> list[str]:
    return sorted(loaded(version)[3]._operations)


def params():
    out = []
    for version in VERSIONS:
        for op in operations(version):
            out.append(pytest.param(version, op, id=f"{version}-{op}"))
    return out


def sample(version: str, op: str, name: str) -> etree._Element:
    raw = (SAMPLES / VERSIONS[version] / op / name).read_bytes().strip()
    raw = re.sub(rb"\{\{(\w+)\}\}", rb"placeholder-\1", raw)  # Postman variables -> plain text
    root = etree.fromstring(raw)
    for el in root.iter():
        # Pretty-printing whitespace in an element without children is not content
        # (parameterless 2.0 operations are written <GetBankList ...>\n    </GetBankList>).
        if isinstance(el.tag, str) and len(el) == 0 and el.text is not None and not el.text.strip():
            if el.getparent() is not None and etree.QName(el.getparent()).localname == "Body":
                el.text = None
    return root


def soap_parts(root) -> list:
    return [child for part in root for child in part if isinstance(child.tag, str)]


def schema_errors(version: str, root) -> list[str]:
    schema = loaded(version)[1]
    errors = []
    for el in soap_parts(root):
        if not schema.validate(el):
            errors += [e.message for e in schema.error_log]
    return errors


def test_wsdls_are_generated_from_the_samples_and_up_to_date():
    from scripts.generate_wsdl import main

    assert main(["--check"]) == 0, "run scripts/generate_wsdl.py and commit the WSDLs"


@pytest.mark.parametrize("version", list(VERSIONS))
def test_zeep_loads_the_wsdl_without_warnings(version):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        zeep.Client(str(aiq_wsdl.BUNDLED[version]))
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("version", list(VERSIONS))
def test_every_required_operation_is_in_the_wsdl_with_asmx_soap_action(version):
    tree, _, _, binding = loaded(version)
    ops = set(operations(version))
    required = set(REQUIRED) - ({"Login"} if version == "2.0" else set())
    if version == "2.0":
        required |= {"TokenGet", "TokenRefresh"}
    assert required - ops == set()
    assert len(ops) == len(list((SAMPLES / VERSIONS[version]).iterdir()))  # every sample
    for op in ops:
        assert binding.get(op).soapaction == TNS + op
    location = tree.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    assert location.endswith(aiq_wsdl.PATHS[version])


def test_2_0_sends_the_aiq_soap_header_on_every_operation_except_token_ones():
    binding = loaded("2.0")[3]
    for op in operations("2.0"):
        headers = binding.get(op).input.header.type.elements
        names = [name for name, _ in headers]
        assert names == ([] if op in ("TokenGet", "TokenRefresh") else ["AiqSoapHeader"]), op
        assert "token" not in [n for n, _ in binding.get(op).input.body.type.elements]


@pytest.mark.parametrize("version,op", params())
def test_sample_request_matches_the_wsdl(version, op):
    root = sample(version, op, "request.xml")
    errors = schema_errors(version, root)
    known = KNOWN_SAMPLE_DEFECTS.get((version, op, "request.xml"))
    if known:
        assert len(errors) == 1 and known in errors[0], errors
    else:
        assert errors == []
        # zeep reads the input message with the same WSDL (what a server built on it would do).
        binding = loaded(version)[3]
        binding.get(op).input.deserialize(root)


@pytest.mark.parametrize("version,op", params())
def test_sample_response_matches_the_wsdl_field_by_field(version, op):
    root = sample(version, op, "response.xml")
    assert schema_errors(version, root) == []
    binding = loaded(version)[3]
    operation = binding.get(op)
    value = operation.output.deserialize(root)
    body_el = soap_parts(root)[0]
    names = [name for name, _ in operation.output.body.type.elements]
    plain = {names[0]: to_plain(value)} if len(names) == 1 else to_plain(value)
    assert_same(body_el, plain, op)


def assert_same(el, value, path: str) -> None:
    """`value` (plain Python from zeep) holds exactly what XML element `el` holds."""
    kids = [k for k in el if isinstance(k.tag, str)]
    if not kids:
        text = (el.text or "").strip()
        if text == "":
            assert value in (None, [], "", {}), f"{path}: expected empty, got {value!r}"
            return
        assert_leaf(text, value, path)
        return
    if isinstance(value, list):
        assert len(value) == len(kids), path
        for k, v in zip(kids, value, strict=True):
            assert_same(k, v, f"{path}/{etree.QName(k).localname}[]")
        return
    assert isinstance(value, dict), f"{path}: {type(value).__name__}"
    seen = set()
    for k in kids:
        name = etree.QName(k).localname
        assert name in value, f"{path}: {name} missing from zeep's result"
        assert_same(k, value[name], f"{path}/{name}")
        seen.add(name)
    extra = {k for k, v in value.items() if v not in (None, []) and k not in seen}
    assert extra == set(), f"{path}: zeep invented {extra}"


def assert_leaf(text: str, value, path: str) -> None:
    if text in ("true", "false"):
        assert value is (text == "true"), path
    elif re.fullmatch(r"-?\d+", text) and isinstance(value, int) and not isinstance(value, bool):
        assert value == int(text), path
    elif re.fullmatch(r"-?\d+(\.\d+)?", text):
        assert isinstance(value, Decimal), f"{path}: {value!r} should be Decimal"
        assert value == Decimal(text), path
    elif re.fullmatch(r"\d{4}-\d\d-\d\dT.*", text):
        assert isinstance(value, datetime), path
        assert value.isoformat().startswith(text[:19]), path
    elif isinstance(value, bytes):
        assert base64.b64encode(value).decode() == text, path
    else:
        assert value == text, path


def test_amounts_are_decimal_and_ids_int_in_the_receipt_and_invoice_types():
    client = loaded("1.1")[2]
    receipt = client.get_element(f"{{{TNS}}}SaveSalesReceiptGetBackTransactionID").type
    fields = dict(receipt.elements)["salesReceipt"].type.elements
    types = {name: el.type.name for name, el in fields}
    assert types["PaymentAmount"] == "decimal"
    assert types["ExchangeRate"] == "decimal"
    assert types["PaymentDate"] == "dateTime"
    assert types["CustomerCode"] == "string"
    invoice = client.get_element(f"{{{TNS}}}GetInvoiceResponse").type
    result = dict(dict(invoice.elements)["GetInvoiceResult"].type.elements)["Result"].type
    inv = {name: el.type.name for name, el in result.elements}
    assert inv["InvoiceID"] == "int"
    assert inv["GrossAmount"] == "decimal"
    assert "CurrrencyCode" in inv  # AIQ's typo, kept
    assert inv["Status"] == "DocumentStatus"
