"""The one way this project talks to AccountsIQ: `AiqClient.for_entity(entity).call(...)`.

zeep over a requests.Session with (connect, read) timeouts from settings; one client per entity;
the session token (1.1 Login / 2.0 TokenGet+TokenRefresh) shared per process (auth.py). A call has
three phases, kept apart because they fail differently:

1. build the envelope  - a bad parameter is the caller's bug: AiqPermanentError, nothing sent;
2. POST it             - not connected: AiqTemporaryError; connected but no answer (read timeout,
                         dropped connection, 5xx, server fault): for a read AiqTemporaryError, for a
                         write AiqAmbiguousError, because AIQ may have committed it;
3. read the answer     - Status=Failure: AiqPermanentError; HasExpired: log in again and replay once
                         (reads always; writes only with replay_safe=True, which the outbox passes
                         after reading back by external reference); garbage: as in 2.

Keys and tokens never reach logs, exception messages or reprs: they live in `Secret`s, messages
are redacted, and zeep's transport logger (which logs whole envelopes at DEBUG) is filtered.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import requests
import zeep
from django.conf import settings
from lxml import etree
from requests.adapters import HTTPAdapter
from zeep import exceptions as zeep_exc
from zeep.transports import Transport

from ledger.aiq import wsdl
from ledger.aiq.auth import TOKENS, Credentials, Secret, Session, credentials_from_env
from ledger.aiq.connections import Connections, NotConnected
from ledger.aiq.errors import (
    AiqAmbiguousError,
    AiqAuthError,
    AiqPermanentError,
    AiqTemporaryError,
)
from ledger.aiq.operations import AiqOperations
from ledger.aiq.results import AiqResult, MalformedReply, interpret, to_plain

log = logging.getLogger(__name__)

READ_PREFIXES = ("Get", "Check")
AUTH_OPERATIONS = frozenset({"Login", "TokenGet", "TokenRefresh"})


class _NoEnvelopes(logging.Filter):
    """zeep.transports logs full request/response envelopes at DEBUG, keys and tokens included."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG:
            record.msg = "AIQ SOAP traffic (envelope omitted: it carries credentials)"
            record.args = ()
        return True


logging.getLogger("zeep.transports").addFilter(_NoEnvelopes())


# AIQ's answers that say "not now" rather than "no": retried with backoff, never shown as a
# permanent failure. A write refused this way is still treated as possibly applied (read back
# after the settle period): AIQ's answer does not say at which point it gave up.
TEMPORARY_ERROR_CODES = frozenset({"SERVER_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT"})
TEMPORARY_MESSAGES = ("temporarily unavailable", "try again later", "timeout expired")


def is_temporary_refusal(result: AiqResult) -> bool:
    message = (result.error_message or "").lower()
    return str(result.error_code or "").upper() in TEMPORARY_ERROR_CODES or any(
        text in message for text in TEMPORARY_MESSAGES
    )


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES)


def _not_connected(exc: requests.RequestException) -> bool:
    """True when the request certainly never reached the server (so even a write is safe)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout | NotConnected):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        name = type(reason).__name__
        return name in ("NewConnectionError", "NameResolutionError", "ConnectTimeoutError")
    return False


# connections kept per process and endpoint: one per thread that may call at once (an outbox
# command's duplicate look-ups run side by side, see sales.outbox.LOOKUP_THREADS)
POOL_CONNECTIONS = 32


def http_session(endpoint: str) -> requests.Session:
    """The HTTP session of a client. requests reads proxies and the CA bundle from the
    environment on every request when `trust_env` is set (about a tenth of a small call's CPU);
    they are read once here instead, for this endpoint."""
    session = requests.Session()
    proxies = requests.utils.get_environ_proxies(endpoint)
    verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
    session.trust_env = False
    session.proxies.update(proxies)
    session.verify = verify
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=POOL_CONNECTIONS)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class DirectTransport(Transport):
    """zeep's transport, posting each envelope over keep-alive http.client connections of its
    own (ledger/aiq/connections.py): an outbox command makes hundreds of small calls (its
    duplicate look-ups), and requests with urllib3 cost about three times the client CPU of
    http.client per call. The session's timeouts and TLS verification hold, and errors come out
    as requests' exceptions, so the error classification below holds. With a proxy or a client
    certificate it posts through the session's connection adapter instead (what Session.send
    calls: the same pool, timeouts, TLS, proxies and exceptions, without Session.request's
    merging of cookies, auth, hooks and environment settings on every call). Redirects are not
    followed: an AIQ endpoint answers, it does not redirect. A session given by the caller
    that trusts the environment goes the usual way."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._urls: dict[str, str] = {}
        self._connections: dict[str, Connections] = {}

    def post(self, address, message, headers):
        session = self.session
        if session.trust_env:
            return super().post(address, message, headers)
        if not session.proxies and not session.cert:
            user_agent = session.headers.get("User-Agent")
            return self._connections_to(address).post(
                message, {"User-Agent": user_agent, **headers} if user_agent else headers
            )
        request = requests.PreparedRequest()
        request.method = "POST"
        request.url = self._prepared_url(address)
        request.headers = requests.structures.CaseInsensitiveDict(session.headers)
        request.headers.update(headers)
        request.headers["Content-Length"] = str(len(message))
        request.body = message
        request._cookies = None
        request.hooks = {"response": []}
        return session.get_adapter(address).send(
            request,
            timeout=self.operation_timeout,
            verify=session.verify,
            cert=session.cert,
            proxies=session.proxies,
        )

    def _connections_to(self, address: str) -> Connections:
        if address not in self._connections:
            timeouts = self.operation_timeout
            if not isinstance(timeouts, tuple):
                timeouts = (timeouts, timeouts)
            self._connections[address] = Connections(
                address, verify=self.session.verify, timeouts=timeouts, size=POOL_CONNECTIONS
            )
        return self._connections[address]

    def _prepared_url(self, address: str) -> str:
        if address not in self._urls:
            probe = requests.PreparedRequest()
            probe.prepare_url(address, None)
            self._urls[address] = probe.url
        return self._urls[address]


class AiqClient(AiqOperations):
    def __init__(
        self,
        *,
        company_id: str,
        credentials_key: str,
        endpoint: str,
        api_version: str = "1.1",
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        session: requests.Session | None = None,
        fetch_wsdl: bool = True,
        credentials: Credentials | None = None,
    ):
        self.api_version = api_version
        self.company_id = company_id
        self.endpoint = endpoint
        self._credentials = credentials or credentials_from_env(
            api_version, company_id, credentials_key
        )
        self._token_key = (api_version, endpoint, company_id, credentials_key)
        self._session = session or http_session(endpoint)
        timeouts = (
            connect_timeout or settings.AIQ_CONNECT_TIMEOUT_SECONDS,
            read_timeout or settings.AIQ_READ_TIMEOUT_SECONDS,
        )
        self._transport = DirectTransport(session=self._session, operation_timeout=timeouts)
        document = wsdl.document_for(endpoint, api_version, fetch=fetch_wsdl)
        self._zeep = zeep.Client(document, transport=self._transport)
        self._binding = document.bindings[wsdl.BINDING]
        self._options = {"address": endpoint}

    @classmethod
    def for_entity(cls, entity, **kwargs) -> AiqClient:
        return cls(
            company_id=entity.company_id,
            credentials_key=entity.credentials_key,
            endpoint=wsdl.endpoint_for(entity.region, entity.api_version),
            api_version=entity.api_version,
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"<AiqClient {self.api_version} company={self.company_id} endpoint={self.endpoint}>"

    # --- public -------------------------------------------------------------------------------

    def call(self, operation: str, *, replay_safe: bool = False, **params: Any) -> AiqResult:
        """Run `operation` with `params` (AIQ's element names); the token is added here."""
        if operation in AUTH_OPERATIONS:
            raise AiqPermanentError("is managed by the client", operation=operation)
        may_replay = is_read(operation) or replay_safe
        session = self._session_token()
        result = self._run(operation, params, session)
        if not result.ok and result.has_expired:
            TOKENS.invalidate(self._token_key, session.token)
            if not may_replay:
                raise AiqAuthError(
                    "session token expired; AIQ refused the write (not applied), retry it",
                    operation=operation,
                )
            log.info("AIQ token expired during %s: logging in again and replaying", operation)
            session = self._session_token()
            result = self._run(operation, params, session)
            if not result.ok and result.has_expired:
                TOKENS.invalidate(self._token_key, session.token)
                raise AiqAuthError("token expired again right after login", operation=operation)
        if not result.ok and is_temporary_refusal(result):
            message = self._redact(f"{result.error_code}: {result.error_message}")
            raise self._lost(operation, f"AIQ is temporarily unavailable ({message})")
        if not result.ok:
            raise AiqPermanentError(
                self._redact(result.error_message or result.error_code or "AIQ reported Failure"),
                operation=operation,
                error_code=result.error_code,
                result=result,
            )
        return result

    def operation_names(self) -> list[str]:
        return sorted(self._binding._operations)

    # --- tokens -------------------------------------------------------------------------------

    def _session_token(self) -> Session:
        current = TOKENS.get(self._token_key)
        if current is not None and current.fresh():
            return current
        with TOKENS.lock(self._token_key):
            current = TOKENS.get(self._token_key)  # another thread may have logged in meanwhile
            if current is not None and current.fresh():
                return current
            session = self._refresh(current) if current is not None else None
            session = session or self._login()
            TOKENS.put(self._token_key, session)
            return session

    def _login(self) -> Session:
        creds = self._credentials
        if self.api_version == "2.0":
            out = self._send(
                "TokenGet",
                {"clientId": creds.key_id.reveal(), "clientSecret": creds.key_secret.reveal()},
            )
            return self._session_from_token_answer("TokenGet", out)
        out = self._send(
            "Login",
            {
                "companyID": creds.company_id,
                "partnerKey": creds.key_id.reveal(),
                "userKey": creds.key_secret.reveal(),
            },
        )
        token = out.get("LoginResult")
        if not token or not isinstance(token, str):
            # AIQ answers an empty LoginResult for wrong keys, wrong company or wrong region.
            raise AiqAuthError("Login returned no session token (check keys, company, region)")
        return Session(Secret(token))

    def _refresh(self, current: Session) -> Session | None:
        if self.api_version != "2.0" or current.refresh_token is None:
            return None
        creds = self._credentials
        try:
            out = self._send(
                "TokenRefresh",
                {
                    "clientId": creds.key_id.reveal(),
                    "clientSecret": creds.key_secret.reveal(),
                    "refreshToken": current.refresh_token.reveal(),
                },
            )
            return self._session_from_token_answer("TokenRefresh", out)
        except AiqAuthError:
            return None  # refresh token no longer accepted: fall back to TokenGet

    def _session_from_token_answer(self, operation: str, out: dict) -> Session:
        wrapper = out.get(operation + "Result") or {}
        inner = wrapper.get("Result") or {}
        access = inner.get("AccessToken") or out.get("AccessToken")
        refresh = inner.get("RefreshToken") or out.get("RefreshToken")
        if not access:
            message = wrapper.get("ErrorMessage") or wrapper.get("ErrorCode") or "no access token"
            raise AiqAuthError(self._redact(str(message)), operation=operation)
        return Session(Secret(access), Secret(refresh) if refresh else None)

    # --- one round trip -------------------------------------------------------------------------

    def _run(self, operation: str, params: dict, session: Session) -> AiqResult:
        kwargs = dict(params)
        if self.api_version == "2.0":
            kwargs["_soapheaders"] = {
                "AiqSoapHeader": {"Entity": self.company_id, "AccessToken": session.token.reveal()}
            }
        else:
            kwargs["token"] = session.token.reveal()
        out = self._send(operation, kwargs)
        try:
            return interpret(operation, out)
        except MalformedReply as exc:
            raise self._lost(operation, str(exc)) from None

    def _send(self, operation: str, kwargs: dict) -> dict:
        """Build, POST and parse one envelope; returns {child of <OpResponse>: plain value}."""
        try:
            op = self._binding.get(operation)
        except ValueError:
            raise AiqPermanentError("no such AIQ operation", operation=operation) from None
        try:
            envelope, headers = self._binding._create(
                operation, (), kwargs, client=self._zeep, options=self._options
            )
        except (TypeError, zeep_exc.Error) as exc:
            raise AiqPermanentError(
                self._redact(f"invalid parameters: {exc}"), operation=operation
            ) from None
        started = time.perf_counter()
        try:
            response = self._transport.post_xml(self.endpoint, envelope, headers)
        except requests.RequestException as exc:
            if _not_connected(exc):
                raise AiqTemporaryError(
                    f"could not connect to AIQ ({type(exc).__name__})", operation=operation
                ) from None
            raise self._lost(operation, f"no answer from AIQ ({type(exc).__name__})") from None
        status = response.status_code
        if status != 200 and "xml" not in response.headers.get("Content-Type", ""):
            # Not a SOAP answer at all (proxy page, wrong URL): the status code says it all.
            if 400 <= status < 500:
                raise AiqPermanentError(f"HTTP {status} from AIQ", operation=operation)
            raise self._lost(operation, f"HTTP {status} from AIQ")
        try:
            reply = self._binding.process_reply(self._zeep, op, response)
        except zeep_exc.Fault as exc:
            code = str(exc.code or "")
            message = self._redact(f"SOAP fault {code}: {exc.message}")
            # ASMX answers every fault with HTTP 500, so the faultcode decides: soap:Client means
            # the request was refused as malformed (not applied, retrying cannot help).
            if code.endswith("Client"):
                raise AiqPermanentError(message, operation=operation) from None
            raise self._lost(operation, message) from None
        except zeep_exc.TransportError as exc:
            if 400 <= exc.status_code < 500:
                raise AiqPermanentError(
                    f"HTTP {exc.status_code} from AIQ", operation=operation
                ) from None
            raise self._lost(operation, f"HTTP {exc.status_code} from AIQ") from None
        except (zeep_exc.Error, etree.LxmlError, ValueError) as exc:
            raise self._lost(operation, f"unreadable answer ({type(exc).__name__})") from None
        log.debug("AIQ %s answered in %.1f ms", operation, (time.perf_counter() - started) * 1000)
        names = [name for name, _ in op.output.body.type.elements]
        if len(names) == 1:
            return {names[0]: to_plain(reply)}
        return to_plain(reply) or {}

    def _lost(self, operation: str, message: str) -> AiqTemporaryError:
        """The request was sent and no usable answer came back."""
        if operation in AUTH_OPERATIONS:
            return AiqAuthError(message, operation=operation)
        if is_read(operation):
            return AiqTemporaryError(message, operation=operation)
        return AiqAmbiguousError(message + "; the write may have been applied", operation=operation)

    def _redact(self, text: str) -> str:
        secrets = self._credentials.secrets()
        current = TOKENS.get(self._token_key)
        if current is not None:
            secrets.append(current.token.reveal())
            if current.refresh_token is not None:
                secrets.append(current.refresh_token.reveal())
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text
