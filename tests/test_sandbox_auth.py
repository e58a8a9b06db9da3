"""AIQ sandbox authentication over real HTTP with zeep: 1.1 Login tokens, 2.0 OAuth tokens
and the AiqSoapHeader, expiry and wrong tokens."""

import pytest
from zeep import Client

from sandbox.testing import aiq_header, login, soap_service


@pytest.fixture
def service(aiq_sandbox):
    return soap_service(aiq_sandbox)


def test_it_serves_both_wsdls_pointing_at_itself(aiq_sandbox):
    client = Client(aiq_sandbox.wsdl_url("1_1"))
    address = client.service._binding_options["address"]
    assert address == aiq_sandbox.endpoint("1_1")
    token = client.service.Login(
        companyID="demo",
        partnerKey=aiq_sandbox.credentials["AIQ_DEMO_PARTNER_KEY"],
        userKey=aiq_sandbox.credentials["AIQ_DEMO_USER_KEY"],
    )
    assert token
    client_2 = Client(aiq_sandbox.wsdl_url("2_0"))
    assert client_2.service._binding_options["address"] == aiq_sandbox.endpoint("2_0")


def test_login_gives_a_token_that_works(aiq_sandbox, service):
    token = login(aiq_sandbox, service)
    result = service.GetCustomer(token=token, customerCode="ACME")
    assert result.Status == "Success"
    assert result.Result.Name == "Acme Widgets Ltd"


def test_login_with_a_wrong_key_gives_no_token(aiq_sandbox, service):
    token = service.Login(
        companyID="demo",
        partnerKey=aiq_sandbox.credentials["AIQ_DEMO_PARTNER_KEY"],
        userKey="not-the-key",
    )
    assert token is None


def test_login_to_an_unknown_company_gives_no_token(aiq_sandbox, service):
    assert (
        service.Login(
            companyID="nobody",
            partnerKey=aiq_sandbox.credentials["AIQ_DEMO_PARTNER_KEY"],
            userKey=aiq_sandbox.credentials["AIQ_DEMO_USER_KEY"],
        )
        is None
    )


def test_a_wrong_token_is_an_aiq_failure_saying_log_in_again(service):
    result = service.GetCustomer(token="made-up", customerCode="ACME")
    assert result.Status == "Failure"
    assert result.ErrorCode == "INVALID_TOKEN"
    assert result.HasExpired is True
    assert result.Result is None


def test_a_token_expires_after_its_time_to_live(aiq_sandbox, service):
    clock = [1000.0]
    aiq_sandbox.server.tokens.clock = lambda: clock[0]
    token = login(aiq_sandbox, service)
    clock[0] += 1199
    assert service.GetCustomer(token=token, customerCode="ACME").Status == "Success"
    clock[0] += 2
    result = service.GetCustomer(token=token, customerCode="ACME")
    assert (result.Status, result.ErrorCode, result.HasExpired) == (
        "Failure",
        "TOKEN_EXPIRED",
        True,
    )
    fresh = login(aiq_sandbox, service)
    assert service.GetCustomer(token=fresh, customerCode="ACME").Status == "Success"


def test_expire_all_tokens_now(aiq_sandbox, service):
    token = login(aiq_sandbox, service)
    assert aiq_sandbox.expire_tokens() >= 1
    result = service.GetCustomer(token=token, customerCode="ACME")
    assert result.HasExpired is True


def test_a_write_with_an_expired_token_changes_nothing(aiq_sandbox, service):
    token = login(aiq_sandbox, service)
    aiq_sandbox.expire_tokens()
    result = service.SaveSalesReceiptGetBackTransactionID(
        token=token,
        salesReceipt={
            "CustomerCode": "ACME",
            "CheckReference": "EXPIRED-1",
            "PaymentAmount": "10.00",
            "BankAccountCode": "BANK-GBP",
        },
    )
    assert result.SaveSalesReceiptGetBackTransactionIDResult.HasExpired is True
    assert result.transactionID == 0
    assert aiq_sandbox.state.receipt_count("EXPIRED-1") == 0


def test_token_get_and_header_on_2_0(aiq_sandbox):
    service = soap_service(aiq_sandbox, "2_0")
    result = service.TokenGet(
        clientId=aiq_sandbox.credentials["AIQ_DEMO_CLIENT_ID"],
        clientSecret=aiq_sandbox.credentials["AIQ_DEMO_CLIENT_SECRET"],
    )
    assert result.TokenGetResult.Status == "Success"
    assert result.AccessToken == result.TokenGetResult.Result.AccessToken
    customer = service.GetCustomer(customerCode="ACME", _soapheaders=aiq_header(result.AccessToken))
    assert customer.Result.Code == "ACME"
    # The same application reaches the second entity by naming it in the header.
    irish = service.GetCustomer(
        customerCode="DUBLNB", _soapheaders=aiq_header(result.AccessToken, "demo-ie")
    )
    assert irish.Result.CurrencyCode == "EUR"


def test_token_refresh_rotates_the_pair(aiq_sandbox):
    service = soap_service(aiq_sandbox, "2_0")
    ids = {
        "clientId": aiq_sandbox.credentials["AIQ_DEMO_CLIENT_ID"],
        "clientSecret": aiq_sandbox.credentials["AIQ_DEMO_CLIENT_SECRET"],
    }
    first = service.TokenGet(**ids)
    aiq_sandbox.expire_tokens()
    expired = service.GetCustomer(customerCode="ACME", _soapheaders=aiq_header(first.AccessToken))
    assert expired.HasExpired is True
    second = service.TokenRefresh(**ids, refreshToken=first.RefreshToken)
    assert second.TokenRefreshResult.Status == "Success"
    assert second.AccessToken != first.AccessToken
    ok = service.GetCustomer(customerCode="ACME", _soapheaders=aiq_header(second.AccessToken))
    assert ok.Status == "Success"
    # A refresh token works once.
    again = service.TokenRefresh(**ids, refreshToken=first.RefreshToken)
    assert again.TokenRefreshResult.Status == "Failure"
    assert again.AccessToken is None


def test_2_0_refuses_a_wrong_secret_a_missing_header_and_a_foreign_entity(aiq_sandbox):
    service = soap_service(aiq_sandbox, "2_0")
    wrong = service.TokenGet(
        clientId=aiq_sandbox.credentials["AIQ_DEMO_CLIENT_ID"], clientSecret="x"
    )
    assert wrong.TokenGetResult.Status == "Failure"
    assert wrong.AccessToken is None
    no_header = service.GetCustomer(customerCode="ACME")
    assert (no_header.Status, no_header.HasExpired) == ("Failure", True)
    token = service.TokenGet(
        clientId=aiq_sandbox.credentials["AIQ_DEMO_CLIENT_ID"],
        clientSecret=aiq_sandbox.credentials["AIQ_DEMO_CLIENT_SECRET"],
    ).AccessToken
    foreign = service.GetCustomer(customerCode="ACME", _soapheaders=aiq_header(token, "other"))
    assert (foreign.Status, foreign.ErrorCode) == ("Failure", "ACCESS_DENIED")


def test_a_1_1_token_is_not_a_2_0_access_token(aiq_sandbox):
    token = login(aiq_sandbox)
    service = soap_service(aiq_sandbox, "2_0")
    result = service.GetCustomer(customerCode="ACME", _soapheaders=aiq_header(token))
    assert result.Status == "Failure"
