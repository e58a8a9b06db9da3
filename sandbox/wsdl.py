"""The WSDL codec: requests are parsed and responses written from the committed WSDL's schema.

`ledger/aiq/integration_1_1.wsdl` and `integration_2_0.wsdl` are the single source of truth.
zeep reads them (operations, SOAPActions, element order, types); enumeration members come from
the schema's simpleTypes. Each element becomes a small `Spec` tree so that parsing and writing
is a plain walk: names, order, nesting and wrappers are AIQ's because they come from the WSDL,
never from this module.

Parsing is stricter than zeep's (which logs and returns None on a bad value): an unknown
element, a value that is not of the element's type, or an enumeration member the schema does
not list raises `CodecError`, which the server answers with a SOAP fault, the way ASMX answers
"Server was unable to read request".
"""

import base64
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from lxml import etree
from zeep import Client
from zeep.xsd import ComplexType

TNS = "http://www.visorsoftware.com/visor/accountsiq/dashboard/Integration/"
XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_DIR = Path(__file__).resolve().parent.parent / "ledger" / "aiq"
VERSIONS = {"1_1": WSDL_DIR / "integration_1_1.wsdl", "2_0": WSDL_DIR / "integration_2_0.wsdl"}

_INT_RE = re.compile(r"^[+-]?\d+$")
_DECIMAL_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_INT_RANGES = {
    "int": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "short": (-(2**15), 2**15 - 1),
}


class CodecError(ValueError):
    """A request that does not fit the WSDL; `line` is where in the document."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(eq=False)
class Spec:
    name: str
    qname: str
    many: bool = False
    nillable: bool = False
    kind: str = "complex"  # or an XSD builtin: int, long, decimal, boolean, dateTime, ...
    enum: frozenset[str] | None = None
    children: list["Spec"] = field(default_factory=list)
    by_name: dict[str, "Spec"] = field(default_factory=dict)

    def child(self, name: str) -> "Spec":
        return self.by_name[name]


@dataclass
class OperationSpec:
    name: str
    soap_action: str
    input: Spec
    output: Spec
    has_header: bool


@dataclass
class ServiceSpec:
    version: str  # "1_1" or "2_0"
    path: Path
    operations: dict[str, OperationSpec]  # by operation name
    by_element: dict[str, OperationSpec]  # by request element QName
    by_action: dict[str, OperationSpec]
    header: Spec | None
    wsdl_text: bytes


def _enums(path: Path) -> dict[str, frozenset[str]]:
    tree = etree.parse(str(path))
    result = {}
    for simple in tree.iter(f"{{{XS}}}simpleType"):
        members = [e.get("value") for e in simple.iter(f"{{{XS}}}enumeration")]
        if simple.get("name") and members:
            result[f"{{{TNS}}}{simple.get('name')}"] = frozenset(members)
    return result


def _builtin(xsd_type) -> str:
    qname = getattr(xsd_type, "qname", None)
    if qname is not None and qname.namespace == XS:
        return qname.localname
    # A named restriction (enumeration): zeep gives it the base builtin's class.
    for cls in type(xsd_type).__mro__:
        name = cls.__name__
        if name in {"Integer", "Int", "Long", "Short"}:
            return "long" if name == "Long" else "int"
        if name in {"Decimal", "Double", "Float"}:
            return "decimal"
        if name in {"Boolean", "DateTime", "Date", "Base64Binary", "String"}:
            return {"DateTime": "dateTime", "Base64Binary": "base64Binary"}.get(name, name.lower())
    return "string"


class _Compiler:
    def __init__(self, enums):
        self.enums = enums
        self.types: dict[int, list[Spec]] = {}

    def element(self, element) -> Spec:
        spec = Spec(
            name=element.qname.localname,
            qname=element.qname.text,
            many=element.max_occurs == "unbounded" or (element.max_occurs or 1) > 1,
            nillable=bool(element.nillable),
        )
        xsd_type = element.type
        if isinstance(xsd_type, ComplexType):
            spec.kind = "complex"
            # Children are shared per complex type (and filled lazily) so recursive and
            # repeated types compile once.
            key = id(xsd_type)
            if key not in self.types:
                self.types[key] = children = []
                children.extend(self.element(child) for _name, child in xsd_type.elements)
            spec.children = self.types[key]
        else:
            spec.kind = _builtin(xsd_type)
            qname = getattr(xsd_type, "qname", None)
            if qname is not None:
                spec.enum = self.enums.get(qname.text)
        return spec


def _index(spec: Spec, seen: set[int]) -> None:
    if id(spec.children) in seen:
        spec.by_name = {c.name: c for c in spec.children}
        return
    seen.add(id(spec.children))
    spec.by_name = {c.name: c for c in spec.children}
    for child in spec.children:
        _index(child, seen)


@cache
def service(version: str) -> ServiceSpec:
    path = VERSIONS[version]
    client = Client(str(path))
    enums = _enums(path)
    compiler = _Compiler(enums)
    binding = next(iter(next(iter(client.wsdl.services.values())).ports.values())).binding
    operations = {}
    for name, op in binding._operations.items():
        operations[name] = OperationSpec(
            name=name,
            soap_action=op.soapaction,
            input=compiler.element(op.input.body),
            output=compiler.element(op.output.body),
            has_header=bool(op.input.header.type.elements),
        )
    header = None
    if any(op.has_header for op in operations.values()):
        header = compiler.element(client.get_element(f"{{{TNS}}}AiqSoapHeader"))
    seen: set[int] = set()
    for op in operations.values():
        _index(op.input, seen)
        _index(op.output, seen)
    if header is not None:
        _index(header, seen)
    return ServiceSpec(
        version=version,
        path=path,
        operations=operations,
        by_element={op.input.qname: op for op in operations.values()},
        by_action={op.soap_action: op for op in operations.values()},
        header=header,
        wsdl_text=path.read_bytes(),
    )


# --- parsing ------------------------------------------------------------------------------


def _scalar(spec: Spec, text: str, line: int | None):
    kind = spec.kind
    stripped = text.strip()
    try:
        if kind in _INT_RANGES:
            if not _INT_RE.match(stripped):
                raise ValueError
            value = int(stripped)
            low, high = _INT_RANGES[kind]
            if not low <= value <= high:
                raise ValueError
            return value
        if kind == "decimal":
            if not _DECIMAL_RE.match(stripped):
                raise ValueError
            return Decimal(stripped)
        if kind == "boolean":
            if stripped in ("true", "1"):
                return True
            if stripped in ("false", "0"):
                return False
            raise ValueError
        if kind in ("dateTime", "date"):
            return parse_datetime(stripped)
        if kind == "base64Binary":
            return base64.b64decode("".join(stripped.split()), validate=True)
    except (ValueError, ArithmeticError):
        raise CodecError(
            f"Input string was not in a correct format: <{spec.name}> expects {kind}, "
            f"got {_preview(text)}.",
            line,
        ) from None
    if spec.enum is not None and text not in spec.enum:
        raise CodecError(
            f"Instance validation error: {_preview(text)} is not a valid value for <{spec.name}>.",
            line,
        )
    return text


def _preview(text: str) -> str:
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text)


_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:T(\d{2}:\d{2}:\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_datetime(text: str) -> datetime:
    """xsd:dateTime (.NET sends up to 7 fractional digits, an offset or Z) -> naive UTC."""
    match = _DATETIME_RE.match(text)
    if not match:
        raise ValueError(text)
    day, clock, fraction, zone = match.groups()
    micro = (fraction or "")[:6].ljust(6, "0")
    offset = "+00:00" if zone == "Z" else (zone or "")
    value = datetime.fromisoformat(f"{day}T{clock or '00:00:00'}.{micro}{offset}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def parse(node: etree._Element, spec: Spec):
    """Read `node` (an element matching `spec`) into plain Python values."""
    if node.get(f"{{{XSI}}}nil") in ("true", "1"):
        return None
    if spec.kind != "complex":
        if len(node):
            raise CodecError(f"<{spec.name}> cannot contain elements.", node.sourceline)
        return _scalar(spec, node.text or "", node.sourceline)
    result: dict = {}
    for child in node:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        child_spec = spec.by_name.get(etree.QName(child).localname)
        if child_spec is None or child.tag != child_spec.qname:
            raise CodecError(
                f"<{etree.QName(child).localname}> was not expected in <{spec.name}>.",
                child.sourceline,
            )
        value = parse(child, child_spec)
        if child_spec.many:
            result.setdefault(child_spec.name, []).append(value)
        elif child_spec.name in result:
            raise CodecError(f"<{child_spec.name}> appears twice.", child.sourceline)
        else:
            result[child_spec.name] = value
    return result


# --- writing ------------------------------------------------------------------------------


def _text(spec: Spec, value) -> str:
    kind = spec.kind
    if isinstance(value, float):
        raise TypeError(f"{spec.name}: floats are never written (use Decimal)")
    if kind == "boolean":
        return "true" if value else "false"
    if kind == "decimal":
        return format(Decimal(value), "f")
    if kind in ("dateTime", "date"):
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds")
    if kind == "base64Binary":
        return base64.b64encode(value).decode("ascii")
    if kind in _INT_RANGES:
        return str(int(value))
    text = str(value)
    if spec.enum is not None and text not in spec.enum:
        raise ValueError(f"{spec.name}: {text!r} is not one of {sorted(spec.enum)}")
    return text


def render(parent: etree._Element, spec: Spec, value) -> None:
    """Append `value` as `spec`'s element(s) to `parent`, children in schema order."""
    if value is None:
        return
    values = value if spec.many else [value]
    if spec.many and not isinstance(value, list):
        raise TypeError(f"{spec.name} repeats: give a list")
    for item in values:
        node = etree.SubElement(parent, spec.qname)
        if item is None:
            node.set(f"{{{XSI}}}nil", "true")
            continue
        if spec.kind != "complex":
            node.text = _text(spec, item)
        else:
            _render_children(node, spec, item)


def _render_children(node: etree._Element, spec: Spec, item: dict) -> None:
    unknown = set(item) - spec.by_name.keys()
    if unknown:
        raise KeyError(f"{spec.name} has no element(s) {sorted(unknown)}")
    for child in spec.children:
        if child.name in item:
            render(node, child, item[child.name])


def envelope(body_spec: Spec, value: dict) -> bytes:
    nsmap = {"soap": SOAP_ENV, "xsi": XSI, "xsd": XS}
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap=nsmap)
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    # The response element declares AIQ's namespace as the default, as ASMX writes it.
    top = etree.SubElement(body, body_spec.qname, nsmap={None: TNS})
    _render_children(top, body_spec, value)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def fault(code: str, message: str) -> bytes:
    """An ASMX-style SOAP 1.1 fault (sent with HTTP 500)."""
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV, "xsi": XSI, "xsd": XS})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    node = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    etree.SubElement(node, "faultcode").text = f"soap:{code}"
    etree.SubElement(node, "faultstring").text = message
    etree.SubElement(node, "detail")
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def wsdl_for(version: str, base_url: str) -> bytes:
    """The committed WSDL with its soap:address pointing at this server."""
    spec = service(version)
    tree = etree.fromstring(spec.wsdl_text)
    for address in tree.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address"):
        address.set(
            "location", f"{base_url}/system/dashboard/integration/integration_{version}.asmx"
        )
    return etree.tostring(tree, xml_declaration=True, encoding="utf-8")
