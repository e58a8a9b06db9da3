"""Bad input to the sandbox gets a SOAP fault (HTTP 500, like ASMX) or an AIQ failure,
never a Python traceback, and changes nothing."""

import pytest
import requests
from lxml import etree

from sandbox.testing import login

NS = "http://www.visorsoftware.com/visor/accountsiq/dashboard/Integration/"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(body: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{SOAP}">'
        f"<soap:Body>{body}</soap:Body></soap:Envelope>"
    ).encode()


def post(sandbox, data: bytes, action: str | None = None):
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if action:
        headers["SOAPAction"] = f'"{NS}{action}"'
    return requests.post(sandbox.endpoint("1_1"), data=data, headers=headers, timeout=10)


def fault_of(response) -> str:
    assert response.status_code == 500
    assert b"Traceback" not in response.content
    assert b'File "' not in response.content
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
    assert fault is not None
    return fault.findtext("faultcode") + " " + fault.findtext("faultstring")


@pytest.mark.parametrize(
    "data",
    [
        b"<not xml",
        b"",
        b'<?xml version="1.0"?><a/>',
        envelope("<Unclosed>"),
        b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
    ],
)
def test_malformed_xml_is_a_client_fault(aiq_sandbox, data):
    text = fault_of(post(aiq_sandbox, data))
    assert text.startswith("soap:Client Server was unable to read request")
    assert "root:" not in text


def test_an_unknown_operation_is_a_client_fault(aiq_sandbox):
    response = post(aiq_sandbox, envelope(f'<StealMoney xmlns="{NS}"/>'), "StealMoney")
    assert "did not recognize the value of HTTP Header SOAPAction" in fault_of(response)


def test_a_soap_action_that_does_not_match_the_body_is_a_fault(aiq_sandbox):
    body = envelope(f'<GetBankList xmlns="{NS}"><token>x</token></GetBankList>')
    assert "did not recognize" in fault_of(post(aiq_sandbox, body, "GetGLAccountList"))


def test_an_unexpected_element_is_a_fault(aiq_sandbox):
    body = envelope(f'<GetBankList xmlns="{NS}"><token>x</token><extra>1</extra></GetBankList>')
    assert "<extra> was not expected" in fault_of(post(aiq_sandbox, body, "GetBankList"))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("PaymentAmount", "ten pounds"),
        ("PaymentAmount", "1e3"),
        ("PaymentDate", "yesterday"),
        ("PaymentAmount", "NaN"),
    ],
)
def test_a_value_of_the_wrong_type_is_a_fault_and_writes_nothing(aiq_sandbox, field, value):
    token = login(aiq_sandbox)
    values = {
        "CustomerCode": "ACME",
        "CheckReference": "WRONG-TYPE",
        "PaymentAmount": "10.00",
        "BankAccountCode": "BANK-GBP",
    }
    values[field] = value
    fields = "".join(f"<{k}>{v}</{k}>" for k, v in values.items())
    body = envelope(
        f'<SaveSalesReceiptGetBackTransactionID xmlns="{NS}"><token>{token}</token>'
        f"<salesReceipt>{fields}</salesReceipt></SaveSalesReceiptGetBackTransactionID>"
    )
    text = fault_of(post(aiq_sandbox, body, "SaveSalesReceiptGetBackTransactionID"))
    assert "Input string was not in a correct format" in text
    assert field in text
    assert aiq_sandbox.state.receipt_count("WRONG-TYPE") == 0


def test_an_int_out_of_range_is_a_fault(aiq_sandbox):
    body = envelope(
        f'<GetTransaction xmlns="{NS}"><token>x</token>'
        "<transactionID>99999999999</transactionID></GetTransaction>"
    )
    assert "transactionID" in fault_of(post(aiq_sandbox, body, "GetTransaction"))


def test_an_internal_error_is_a_server_fault_without_a_traceback(aiq_sandbox, monkeypatch):
    from sandbox import registry

    def explode(ctx, args):
        raise RuntimeError("secret internals /etc/something")

    original = registry.OPERATIONS["GetBankList"]
    monkeypatch.setitem(
        registry.OPERATIONS, "GetBankList", registry.Operation("GetBankList", explode, False, True)
    )
    token = login(aiq_sandbox)
    body = envelope(f'<GetBankList xmlns="{NS}"><token>{token}</token></GetBankList>')
    text = fault_of(post(aiq_sandbox, body, "GetBankList"))
    assert text.startswith("soap:Server")
    assert "secret internals" not in text
    assert original.handler is not explode


def test_a_request_without_content_length_is_refused(aiq_sandbox):
    def chunks():
        yield envelope("")

    response = requests.post(aiq_sandbox.endpoint("1_1"), data=chunks(), timeout=10)
    assert response.status_code == 411


def test_control_endpoint_refuses_bad_settings(aiq_sandbox):
    url = f"{aiq_sandbox.url}/_sandbox/faults"
    assert requests.post(url, data=b"not json", timeout=5).status_code == 400
    response = requests.post(url, json={"failure_rate": 2}, timeout=5)
    assert response.status_code == 400
    assert "between 0 and 1" in response.json()["error"]
    assert requests.post(url, json={"nonsense": 1}, timeout=5).status_code == 400
    assert aiq_sandbox.faults.settings.failure_rate == 0
