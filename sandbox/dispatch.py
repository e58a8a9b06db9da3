"""One SOAP request in, one answer out: envelope checks, authentication, fault injection,
the handler in one database transaction, and the AIQ-shaped reply.

What comes back, as AIQ (an ASMX service) sends it:
- business errors (validation, not found, over-allocation, expired token): HTTP 200 with
  `Status=Failure`, `ErrorCode`, `ErrorMessage`, `HasExpired`;
- a request the service cannot read (malformed XML, unknown operation, a value of the wrong
  type): HTTP 500 with a `soap:Fault`, never a Python traceback;
- an unexpected error inside the sandbox: HTTP 500 `soap:Server` fault with a generic message
  (the traceback goes to the server log only).
"""

import logging
from dataclasses import dataclass

from lxml import etree

from sandbox import wsdl
from sandbox.books import Ctx
from sandbox.registry import (
    ACCESS_DENIED,
    FAILURE,
    INVALID_TOKEN,
    OPERATIONS,
    SERVER_ERROR,
    SUCCESS,
    AiqFailure,
    Reply,
)
from sandbox.store import now

log = logging.getLogger("sandbox")

# No DTDs, no entity expansion, no network: requests are untrusted input.
_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_comments=True
)


@dataclass
class Outcome:
    status: int
    body: bytes
    drop: bool = False  # close the connection without answering (written, reset or late)
    op: str | None = None


def _fault(code: str, message: str, op: str | None = None) -> Outcome:
    return Outcome(500, wsdl.fault(code, message), op=op)


def _unreadable(message: str, line: int | None = None) -> str:
    where = f" ---> There is an error in XML document ({line}, 1)." if line else ""
    return f"Server was unable to read request.{where} ---> {message}"


def handle(app, version: str, body: bytes, soap_action: str | None) -> Outcome:
    service = wsdl.service(version)
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        return _fault("Client", _unreadable(f"{exc.msg}.", exc.lineno))
    if root.tag != f"{{{wsdl.SOAP_ENV}}}Envelope":
        return _fault("Client", _unreadable("The root element is not a SOAP 1.1 Envelope."))
    body_el = root.find(f"{{{wsdl.SOAP_ENV}}}Body")
    request = (
        next((child for child in body_el if isinstance(child.tag, str)), None)
        if (body_el is not None)
        else None
    )
    action = (soap_action or "").strip().strip('"')
    op_spec = service.by_element.get(request.tag) if request is not None else None
    if op_spec is None or (action and action != op_spec.soap_action):
        shown = action or (etree.QName(request).localname if request is not None else "")
        return _fault(
            "Client", f"Server did not recognize the value of HTTP Header SOAPAction: {shown}."
        )
    operation = OPERATIONS.get(op_spec.name)
    if operation is None:
        return _fault("Server", f"The AIQ sandbox does not implement {op_spec.name}.", op_spec.name)
    try:
        args = wsdl.parse(request, op_spec.input)
        header = None
        if op_spec.has_header:
            header_el = root.find(f"{{{wsdl.SOAP_ENV}}}Header/{{{wsdl.TNS}}}AiqSoapHeader")
            header = wsdl.parse(header_el, service.header) if header_el is not None else {}
    except wsdl.CodecError as exc:
        return _fault("Client", _unreadable(exc.message, exc.line), op_spec.name)

    app.count_call(op_spec.name)
    injected = app.faults.should_fail(op_spec.name)
    if injected == "http500":
        return _fault(
            "Server", "Server was unable to process request. ---> Injected failure.", op_spec.name
        )
    if injected == "aiq":
        failure = AiqFailure(
            "Injected failure: the service is temporarily unavailable.", SERVER_ERROR
        )
        return Outcome(200, _failure_body(op_spec, failure), op=op_spec.name)

    if app.faults.should_reset(op_spec.name):
        return Outcome(0, b"", drop=True, op=op_spec.name)  # nothing written, nothing said
    delay = app.faults.late_commit_delay(op_spec.name) if operation.write else None
    if delay is not None:
        try:
            with app.store.transaction() as db:
                entity = _authenticate(app, db, version, operation, args, header)
        except AiqFailure as failure:
            return Outcome(200, _failure_body(op_spec, failure), op=op_spec.name)
        app.later(delay, _commit_late, app, op_spec, operation, entity["id"], args)
        return Outcome(0, b"", drop=True, op=op_spec.name)  # accepted; committed later

    try:
        with app.store.transaction() as db:
            entity = _authenticate(app, db, version, operation, args, header)
            ctx = Ctx(db=db, entity=entity, now=now(), user="api", app=app)
            reply = operation.handler(ctx, args)
            # Written inside the transaction: a reply that does not fit the WSDL rolls back.
            payload = _success_body(op_spec, reply)
    except AiqFailure as failure:
        return Outcome(200, _failure_body(op_spec, failure), op=op_spec.name)
    except Exception:
        log.exception("sandbox: %s failed", op_spec.name)
        return _fault(
            "Server",
            "Server was unable to process request. ---> An internal error occurred.",
            op_spec.name,
        )
    drop = operation.write and app.faults.should_drop(op_spec.name)
    return Outcome(200, payload, drop=drop, op=op_spec.name)


def _commit_late(app, op_spec, operation, entity_id: str, args: dict) -> None:
    """A write accepted earlier (its caller got no answer) is processed now, as AIQ would when
    it catches up: with the books as they are now, so its own checks may refuse it."""
    try:
        with app.store.transaction() as db:
            entity = db.execute("SELECT * FROM entity WHERE id = ?", (entity_id,)).fetchone()
            ctx = Ctx(db=db, entity=entity, now=now(), user="api", app=app)
            _success_body(op_spec, operation.handler(ctx, args))
    except AiqFailure as failure:
        log.info("sandbox: late %s refused: %s", op_spec.name, failure.message)
        app.faults.late_outcome(False)
        return
    except Exception:
        log.exception("sandbox: late %s failed", op_spec.name)
        app.faults.late_outcome(False)
        return
    app.faults.late_outcome(True)


def _authenticate(app, db, version, operation, args, header):
    if not operation.auth:
        return None
    expire_every = app.faults.settings.token_expire_every
    if version == "1_1":
        token = app.tokens.check(args.get("token"), "session", expire_every)
        entity_id = token.entities[0]
    else:
        if not header or not header.get("AccessToken"):
            raise AiqFailure(
                "The AiqSoapHeader with an AccessToken is missing.", INVALID_TOKEN, has_expired=True
            )
        token = app.tokens.check(header.get("AccessToken"), "access", expire_every)
        entity_id = (header.get("Entity") or "").strip()
        if entity_id not in token.entities:
            raise AiqFailure(
                f"This application has no access to entity '{entity_id}'.", ACCESS_DENIED
            )
    entity = db.execute("SELECT * FROM entity WHERE id = ?", (entity_id,)).fetchone()
    if entity is None:
        raise AiqFailure(f"Entity '{entity_id}' does not exist.", ACCESS_DENIED)
    return entity


def _status(wrapper: wsdl.Spec, status: dict) -> dict:
    return {key: value for key, value in status.items() if key in wrapper.by_name}


def _success_body(op_spec: wsdl.OperationSpec, reply: Reply) -> bytes:
    out = op_spec.output
    if reply.raw is not None:
        return wsdl.envelope(out, reply.raw)
    wrapper = out.children[0]
    ok = {"Status": "Success", "ErrorCode": SUCCESS, "ErrorMessage": "", "HasExpired": False}
    if "WSResultStatus" in wrapper.by_name and "Status" not in wrapper.by_name:
        value = {"WSResultStatus": reply.result if reply.result is not None else [ok]}
    else:
        value = _status(wrapper, ok)
        if reply.result is not None:
            value["Result"] = reply.result
    return wsdl.envelope(out, {wrapper.name: value, **reply.siblings})


def _failure_body(op_spec: wsdl.OperationSpec, failure: AiqFailure) -> bytes:
    out = op_spec.output
    wrapper = out.children[0]
    status = {
        "Status": "Failure",
        "ErrorCode": failure.code or FAILURE,
        "ErrorMessage": failure.message,
        "HasExpired": failure.has_expired,
    }
    if wrapper.kind != "complex":  # Login: no token comes back
        return wsdl.envelope(out, {})
    if "WSResultStatus" in wrapper.by_name and "Status" not in wrapper.by_name:
        value = {"WSResultStatus": [status]}
    else:
        value = _status(wrapper, status)
    # ASMX always writes value-type out parameters: a failed ...GetBackTransactionID says 0.
    siblings = {c.name: 0 for c in out.children[1:] if c.kind in ("int", "long") and not c.many}
    return wsdl.envelope(out, {wrapper.name: value, **siblings})
