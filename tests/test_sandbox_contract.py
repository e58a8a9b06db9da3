"""Contract: AIQ's own sample request for every operation the sandbox implements is accepted,
and the answer parses with the committed WSDL (zeep, strict) and uses only element paths that
AIQ's sample response has. Samples are the copies in tests/aiq_samples/."""

from pathlib import Path

import pytest
import requests
from lxml import etree

from sandbox import wsdl
from sandbox.registry import load_all
from sandbox.testing import _zeep_client, login

SAMPLES = Path(__file__).parent / "aiq_samples"
OPERATIONS = sorted(load_all())


def paths(element, prefix="") -> set[str]:
    result = set()
    for child in element:
        if not isinstance(child.tag, str):
            continue
        path = f"{prefix}/{etree.QName(child).localname}"
        result.add(path)
        result |= paths(child, path)
    return result


def empty_leaves(element, prefix="") -> set[str]:
    """Sample elements written empty (`<transactionIDs/>`): their content is not shown."""
    result = set()
    for child in element:
        if not isinstance(child.tag, str):
            continue
        path = f"{prefix}/{etree.QName(child).localname}"
        if len(child) == 0 and not (child.text or "").strip():
            result.add(path)
        result |= empty_leaves(child, path)
    return result


def body_of(xml: bytes):
    root = etree.fromstring(xml)
    body = root.find(f"{{{wsdl.SOAP_ENV}}}Body")
    return next(child for child in body if isinstance(child.tag, str))


def fill(template: str, sandbox, token: str, access_token: str) -> str:
    values = {
        "{{aiq_token}}": access_token if "AiqSoapHeader" in template else token,
        "{{aiq_entity}}": "demo",
        "{{coID}}": "demo",
        "{{partnerKey}}": sandbox.credentials["AIQ_DEMO_PARTNER_KEY"],
        "{{userKey}}": sandbox.credentials["AIQ_DEMO_USER_KEY"],
        "{{aiq_client_id}}": sandbox.credentials["AIQ_DEMO_CLIENT_ID"],
        "{{aiq_client_secret}}": sandbox.credentials["AIQ_DEMO_CLIENT_SECRET"],
        "{{aiq_refresh_token}}": "unknown-refresh-token",
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template


@pytest.fixture(scope="module")
def contract_sandbox(tmp_path_factory):
    from sandbox.testing import start_sandbox

    sandbox = start_sandbox(tmp_path_factory.mktemp("contract") / "aiq.sqlite3")
    token = login(sandbox)
    service = _zeep_client("2_0").create_service(
        f"{{{wsdl.TNS}}}IntegrationSoap", sandbox.endpoint("2_0")
    )
    access = service.TokenGet(
        clientId=sandbox.credentials["AIQ_DEMO_CLIENT_ID"],
        clientSecret=sandbox.credentials["AIQ_DEMO_CLIENT_SECRET"],
    ).AccessToken
    yield sandbox, token, access
    sandbox.stop()


@pytest.mark.parametrize("version", ["1_1", "2_0"])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_sample_request_gets_an_answer_shaped_like_the_sample(contract_sandbox, operation, version):
    sandbox, token, access = contract_sandbox
    folder = SAMPLES / f"ops-{version}" / operation
    if not folder.exists():
        assert operation in ("Login", "TokenGet", "TokenRefresh")
        pytest.skip(f"{operation} is not an Integration {version} operation")
    request = fill((folder / "request.xml").read_text(), sandbox, token, access)
    op_spec = wsdl.service(version).operations[operation]
    response = requests.post(
        sandbox.endpoint(version),
        data=request.encode(),
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": op_spec.soap_action},
        timeout=30,  # a loaded CI machine, not the sandbox, is what a shorter wait would test
    )
    assert response.status_code == 200, response.text[:500]
    # Strict parse with zeep's binding of the committed WSDL.
    binding = _zeep_client(version).wsdl.bindings[f"{{{wsdl.TNS}}}IntegrationSoap"]
    binding.get(operation).output.deserialize(etree.fromstring(response.content))
    ours = body_of(response.content)
    sample = body_of((folder / "response.xml").read_bytes())
    assert ours.tag == sample.tag
    allowed = paths(sample)
    open_ended = empty_leaves(sample)
    extra = {
        path
        for path in paths(ours)
        if path not in allowed and not any(path.startswith(leaf + "/") for leaf in open_ended)
    }
    assert not extra, f"elements AIQ's sample does not have: {sorted(extra)}"
