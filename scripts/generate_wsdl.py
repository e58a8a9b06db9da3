#!/usr/bin/env python3
"""Generate ledger/aiq/integration_1_1.wsdl and integration_2_0.wsdl from AIQ's sample envelopes.

AIQ publishes one sample request/response envelope per operation (tests/aiq_samples/ops-1_1 and
ops-2_0, copied from its Postman collections). Those samples are ASMX "test page" envelopes: every
string is `string`, every int is `100`, decimals are other numbers, dates are ISO timestamps, flags
are true/false, enums show one member. This script reads them and writes a document/literal wrapped
WSDL the way .NET ASMX would: one wrapper element per operation, SOAPAction = namespace + name,
`ArrayOfX` wrappers, elementFormDefault qualified. Element names, order and nesting are copied
verbatim from the samples (typos such as `CurrrencyCode` included); only the types are inferred.

Run:  .venv/bin/python scripts/generate_wsdl.py            (rewrites both WSDLs)
      .venv/bin/python scripts/generate_wsdl.py --check    (exit 1 if the committed files differ)

Inference rules, in order (see `leaf_type`): overrides in LEAF_OVERRIDES; `string` -> xs:string;
true/false -> boolean; ISO date(-time) -> dateTime; 100 -> int; other numbers -> decimal;
base64 -> base64Binary; a known enum member -> that enum. Empty sample elements (`<transactionIDs/>`)
carry no type information; EMPTY_OVERRIDES names what they are (arrays of int or string).
An element whose children all share one upper-case tag is an array (`Lines/InvoiceLine`).
Every element is minOccurs=0 so zeep can serialise partial objects and omit what callers leave out.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "tests" / "aiq_samples"
OUT_DIR = ROOT / "ledger" / "aiq"
TNS = "http://www.visorsoftware.com/visor/accountsiq/dashboard/Integration/"
XS = "http://www.w3.org/2001/XMLSchema"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"

VERSIONS = {
    "1_1": {"dir": "ops-1_1", "header": False},
    "2_0": {"dir": "ops-2_0", "header": True},
}

# Enumerations the samples show, with the members we know of. zeep does not enforce enumerations
# when parsing, but the sandbox validates against them, so keep the lists to members AIQ documents
# or shows (ResultStatus in every response; Ledger/LedgerType on accounts and transactions; the
# document Status/Type of invoices, credit notes and orders).
ENUMS = {
    "ResultStatus": ["Success", "Failure"],
    "LedgerType": ["Sales", "Purchases"],
    "DocumentStatus": ["Quote", "Created", "Processed", "Complete"],
    "InvoiceType": ["Invoice", "CreditNote"],
}
# (element name, sample value) -> enum type. Anything else non-numeric stays xs:string: a one-member
# enum guessed from a single sample (e.g. AccountSelection=PnL) would reject AIQ's other members.
ENUM_MEMBERS = {
    ("Status", "Success"): "ResultStatus",
    ("Ledger", "Sales"): "LedgerType",
    ("LedgerType", "Sales"): "LedgerType",
    ("Status", "Processed"): "DocumentStatus",
    ("Status", "Quote"): "DocumentStatus",
    ("Status", "Complete"): "DocumentStatus",
    ("Status", "Created"): "DocumentStatus",
    ("Type", "Invoice"): "InvoiceType",
}
# Element names whose sample value misleads: ErrorCode shows SUCCESS but is an open set of codes;
# ids that AIQ keys by string in some objects and by int in others are decided by value per object.
LEAF_OVERRIDES = {"ErrorCode": "string", "ErrorMessage": "string"}
# Empty sample elements: what .NET would put inside them. (item element, xsd type)
INT_ARRAY = ("int", "int")
STRING_ARRAY = ("string", "string")
EMPTY_OVERRIDES = {
    "AccountIDsFilter": INT_ARRAY,
    "TransactionIDsFilter": INT_ARRAY,
    "InvoiceIDsFilter": INT_ARRAY,
    "OrderIDsFilter": INT_ARRAY,
    "SelectedCategoryIds": INT_ARRAY,
    "accountIDs": INT_ARRAY,
    "creditNoteIDs": INT_ARRAY,
    "invoiceIDs": INT_ARRAY,
    "transactionIDs": INT_ARRAY,
    "DepartmentIDsFilter": STRING_ARRAY,  # DepartmentID is a string code everywhere else
    "TypesFilter": STRING_ARRAY,
    "InvoiceNumbersFilter": STRING_ARRAY,
    "OrderNumbers": STRING_ARRAY,
    "Emails": STRING_ARRAY,
    "customerCodes": STRING_ARRAY,
    "supplierCodes": STRING_ARRAY,
    "stockItemIDs": STRING_ARRAY,  # StockItemID is a string code
    "a1Filter": STRING_ARRAY,
    "a2Filter": STRING_ARRAY,
    "a3Filter": STRING_ARRAY,
    "a4Filter": STRING_ARRAY,
    "a5Filter": STRING_ARRAY,
    "a6Filter": STRING_ARRAY,
    "ArrayOfString": STRING_ARRAY,  # GetGLAccountList: string[][]
    "ValidationErrors": ("DataErrorDTO", None),  # shown non-empty in other samples
}
# Empty `<Result/>` per operation.
EMPTY_RESULT = {"GetCurrencyList": STRING_ARRAY}
PRIMITIVE_ITEMS = {"int", "string", "decimal", "long", "boolean", "dateTime"}

DATETIME_RE = re.compile(r"^\d{4}-\d\d-\d\d(T[\d:.]+(Z|[+-]\d\d:\d\d)?)?$")
NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
BASE64_RE = re.compile(r"^[A-Za-z0-9+/]+={1,2}$")


def local(tag: str) -> str:
    return etree.QName(tag).localname


def children(el):
    return [c for c in el if isinstance(c.tag, str)]


class Schema:
    """Collects named complex types, deduplicated by structure."""

    def __init__(self):
        self.types: dict[str, list] = {}  # name -> [(elem name, type ref, is_array_item)]
        self.by_sig: dict[tuple, str] = {}
        self.enums_used: set[str] = set()
        self.warnings: list[str] = []
        self.pending: set[str] = set()
        # structure -> .NET class name, learnt from array items (`<Lines><InvoiceLine>`), so a
        # parameter `<inv>` of the same shape is typed `BatchSalesInvoice`, not `Inv`.
        self.class_hints: dict[str, str] = {}

    def shape(self, el) -> str:
        kids = children(el)
        if not kids:
            return local(el.tag)
        return local(el.tag) + "(" + ",".join(self.shape(k) for k in kids) + ")"

    def learn_hints(self, el):
        for node in el.iter():
            # The envelope, body and operation wrappers have a single child without being arrays.
            parent = node.getparent()
            if parent is None or local(parent.tag) in ("Envelope", "Body"):
                continue
            if isinstance(node.tag, str) and self.is_array(node):
                item = children(node)[0]
                if children(item):
                    inner = self.shape(item).split("(", 1)[1]
                    self.class_hints.setdefault(inner, local(item.tag))

    def register(self, preferred: str, fields: list) -> str:
        sig = tuple(fields)
        if sig in self.by_sig:
            return self.by_sig[sig]
        name, n = preferred, 1
        while name in self.types:
            n += 1
            name = f"{preferred}{n}"
        self.types[name] = fields
        self.by_sig[sig] = name
        return name

    def array(self, item_name: str, item_type: str) -> str:
        base = item_type.split(":", 1)[1]
        pref = "ArrayOf" + (base[0].upper() + base[1:])
        return self.register(pref, [(item_name, item_type, True)])

    def leaf_type(self, name: str, text: str) -> str:
        if name in LEAF_OVERRIDES:
            return "s:" + LEAF_OVERRIDES[name]
        if text == "string" or text.startswith("{{"):
            return "s:string"
        if text in ("true", "false"):
            return "s:boolean"
        if DATETIME_RE.match(text):
            return "s:dateTime"
        if text == "100":
            return "s:int"
        if NUMBER_RE.match(text):
            return "s:decimal"
        enum = ENUM_MEMBERS.get((name, text))
        if enum:
            self.enums_used.add(enum)
            return "tns:" + enum
        if BASE64_RE.match(text) and len(text) % 4 == 0:
            return "s:base64Binary"
        return "s:string"

    def empty_type(self, name: str, op: str) -> str:
        spec = EMPTY_RESULT.get(op) if name == "Result" else EMPTY_OVERRIDES.get(name)
        if spec is None:
            return "s:string"
        item, prim = spec
        if prim is not None:
            return "tns:" + self.array(item, "s:" + prim)
        # The item type may only be defined by a later sample: resolve once all are read.
        self.pending.add(item)
        return "tns:ArrayOf" + item

    def is_array(self, el) -> bool:
        kids = children(el)
        if not kids:
            return False
        tags = {local(k.tag) for k in kids}
        if len(tags) != 1:
            return False
        tag = tags.pop()
        if tag in PRIMITIVE_ITEMS or tag == "ArrayOfString":
            return True
        return tag[0].isupper() and len(children(kids[0])) > 0

    def preferred_name(self, el, op: str) -> str:
        name = local(el.tag)
        hint = self.class_hints.get(self.shape(el).split("(", 1)[1])
        if hint:
            return hint
        if name in ("Result", "query", "queries", "options", "header", "line", "email", "document"):
            return op + name[0].upper() + name[1:]
        return name[0].upper() + name[1:]

    def type_of(self, el, op: str) -> str:
        name = local(el.tag)
        kids = children(el)
        if not kids:
            text = (el.text or "").strip()
            return self.empty_type(name, op) if text == "" else self.leaf_type(name, text)
        if self.is_array(el):
            item = kids[0]
            item_name = local(item.tag)
            if item_name in PRIMITIVE_ITEMS:
                return "tns:" + self.array(item_name, "s:" + item_name)
            return "tns:" + self.array(item_name, self.type_of(item, op))
        fields = [(local(k.tag), self.type_of(k, op), False) for k in kids]
        names = [f[0] for f in fields]
        if len(set(names)) != len(names):
            self.warnings.append(f"{op}: {name} repeats a child name: {names}")
        return "tns:" + self.register(self.preferred_name(el, op), fields)

    def resolve_pending(self):
        for item in sorted(self.pending):
            if item not in self.types:
                raise SystemExit(f"empty element refers to {item}, which no sample defines")
            name = self.array(item, "tns:" + item)
            if name != "ArrayOf" + item:
                raise SystemExit(f"ArrayOf{item} resolved to {name}: adjust EMPTY_OVERRIDES")


def load(path: Path):
    return etree.fromstring(path.read_bytes().strip())


def body_child(root):
    for part in root:
        if isinstance(part.tag, str) and local(part.tag) == "Body":
            kids = children(part)
            return kids[0] if kids else None
    return None


def header_children(root):
    for part in root:
        if isinstance(part.tag, str) and local(part.tag) == "Header":
            return children(part)
    return []


def collect(version: str):
    conf = VERSIONS[version]
    schema = Schema()
    ops = []
    op_dirs = sorted(p for p in (SAMPLES / conf["dir"]).iterdir() if p.is_dir())
    for d in op_dirs:
        schema.learn_hints(load(d / "request.xml"))
        schema.learn_hints(load(d / "response.xml"))
    for d in op_dirs:
        op = d.name
        req = load(d / "request.xml")
        resp = load(d / "response.xml")
        req_el = body_child(req)
        resp_el = body_child(resp)
        if local(req_el.tag) != op or local(resp_el.tag) != op + "Response":
            schema.warnings.append(f"{op}: element names differ from the operation name")
        params = [(local(k.tag), schema.type_of(k, op)) for k in children(req_el)]
        outs = [(local(k.tag), schema.type_of(k, op)) for k in children(resp_el)]
        headers = [local(h.tag) for h in header_children(req)]
        ops.append({"name": op, "params": params, "outs": outs, "header": bool(headers)})
    schema.resolve_pending()
    return schema, ops


def attr(s: str) -> str:
    return s.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def render(version: str) -> tuple[str, list[str]]:
    conf = VERSIONS[version]
    schema, ops = collect(version)
    svc = f"integration_{version}"
    out = []
    w = out.append
    w('<?xml version="1.0" encoding="utf-8"?>')
    w(
        "<!-- Generated by scripts/generate_wsdl.py from AIQ's sample envelopes in "
        f"tests/aiq_samples/{conf['dir']}. Do not edit by hand. -->"
    )
    w(
        '<wsdl:definitions xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" '
        f'xmlns:s="{XS}" xmlns:tns="{TNS}" '
        'xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" '
        f'targetNamespace="{TNS}">'
    )
    w("  <wsdl:types>")
    # tns/s are redeclared on the schema so it can be extracted and used on its own (validation).
    w(
        f'    <s:schema xmlns:s="{XS}" xmlns:tns="{TNS}" elementFormDefault="qualified" '
        f'targetNamespace="{TNS}">'
    )

    def seq(fields, indent):
        pad = " " * indent
        w(f"{pad}<s:sequence>")
        for name, typ, is_item in fields:
            if is_item:
                nil = ' nillable="true"' if typ.startswith("tns:") else ""
                w(
                    f'{pad}  <s:element minOccurs="0" maxOccurs="unbounded" name="{name}"{nil} '
                    f'type="{typ}"/>'
                )
            else:
                w(f'{pad}  <s:element minOccurs="0" maxOccurs="1" name="{name}" type="{typ}"/>')
        w(f"{pad}</s:sequence>")

    for op in ops:
        for el_name, fields in (
            (op["name"], op["params"]),
            (op["name"] + "Response", op["outs"]),
        ):
            w(f'      <s:element name="{el_name}">')
            w("        <s:complexType>")
            seq([(n, t, False) for n, t in fields], 10)
            w("        </s:complexType>")
            w("      </s:element>")
    for name in sorted(schema.types):
        w(f'      <s:complexType name="{name}">')
        seq(schema.types[name], 8)
        w("      </s:complexType>")
    for name in sorted(schema.enums_used):
        w(f'      <s:simpleType name="{name}">')
        w('        <s:restriction base="s:string">')
        for member in ENUMS[name]:
            w(f'          <s:enumeration value="{member}"/>')
        w("        </s:restriction>")
        w("      </s:simpleType>")
    if conf["header"]:
        w('      <s:element name="AiqSoapHeader" type="tns:AiqSoapHeader"/>')
        w('      <s:complexType name="AiqSoapHeader">')
        seq([("Entity", "s:string", False), ("AccessToken", "s:string", False)], 8)
        w("        <s:anyAttribute/>")
        w("      </s:complexType>")
    w("    </s:schema>")
    w("  </wsdl:types>")

    for op in ops:
        n = op["name"]
        w(f'  <wsdl:message name="{n}SoapIn">')
        w(f'    <wsdl:part name="parameters" element="tns:{n}"/>')
        w("  </wsdl:message>")
        w(f'  <wsdl:message name="{n}SoapOut">')
        w(f'    <wsdl:part name="parameters" element="tns:{n}Response"/>')
        w("  </wsdl:message>")
        if conf["header"] and op["header"]:
            w(f'  <wsdl:message name="{n}AiqSoapHeader">')
            w('    <wsdl:part name="AiqSoapHeader" element="tns:AiqSoapHeader"/>')
            w("  </wsdl:message>")

    w('  <wsdl:portType name="IntegrationSoap">')
    for op in ops:
        n = op["name"]
        w(f'    <wsdl:operation name="{n}">')
        w(f'      <wsdl:input message="tns:{n}SoapIn"/>')
        w(f'      <wsdl:output message="tns:{n}SoapOut"/>')
        w("    </wsdl:operation>")
    w("  </wsdl:portType>")

    w('  <wsdl:binding name="IntegrationSoap" type="tns:IntegrationSoap">')
    w('    <soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>')
    for op in ops:
        n = op["name"]
        w(f'    <wsdl:operation name="{n}">')
        w(f'      <soap:operation soapAction="{TNS}{n}" style="document"/>')
        w("      <wsdl:input>")
        w('        <soap:body use="literal"/>')
        if conf["header"] and op["header"]:
            w(
                f'        <soap:header message="tns:{n}AiqSoapHeader" part="AiqSoapHeader" '
                'use="literal"/>'
            )
        w("      </wsdl:input>")
        w("      <wsdl:output>")
        w('        <soap:body use="literal"/>')
        w("      </wsdl:output>")
        w("    </wsdl:operation>")
    w("  </wsdl:binding>")
    w('  <wsdl:service name="Integration">')
    w('    <wsdl:port name="IntegrationSoap" binding="tns:IntegrationSoap">')
    w(
        '      <soap:address location="https://eu1.accountsiq.com/system/dashboard/integration/'
        f'{svc}.asmx"/>'
    )
    w("    </wsdl:port>")
    w("  </wsdl:service>")
    w("</wsdl:definitions>")
    return "\n".join(out) + "\n", schema.warnings


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed WSDLs are stale")
    args = ap.parse_args(argv)
    stale = False
    for version in VERSIONS:
        text, warnings = render(version)
        for msg in warnings:
            print(f"warning ({version}): {msg}", file=sys.stderr)
        path = OUT_DIR / f"integration_{version}.wsdl"
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                print(f"{path.relative_to(ROOT)} is stale: run scripts/generate_wsdl.py")
                stale = True
        else:
            path.write_text(text, encoding="utf-8")
            n_ops = text.count("<soap:operation ")
            print(f"wrote {path.relative_to(ROOT)} ({n_ops} operations)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
