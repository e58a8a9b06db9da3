"""update_department: rename a BI code, retire or activate it in AIQ (UpdateDepartment).

AIQ's UpdateDepartment sets a department's description and active flag and answers no id, so
the read-back is the department itself (GetDepartmentById): done when AIQ holds exactly the
description and state the command asks for. A lost answer is therefore read back, never sent
again when it landed; a send that did not land is sent again (the same values: an update, not a
create, so even a second landing would change nothing).

Payload (UpdateDepartmentPayload): {"department_id", "description", "active"}.
result: {"department_id", "description", "active"}. The mirror row takes the new values when
the command is confirmed (until then a pull leaves it alone: ledger/sync/pull.py
departments_store).
"""

from dataclasses import dataclass

from ledger.aiq.errors import AiqPermanentError
from ledger.aiq.results import get
from ledger.models import Department, OutboxCommand
from ledger.outbox.executors import REPLAY_AFTER_EXPIRY, ReadBack, _require

KIND = "update_department"


@dataclass(frozen=True)
class UpdateDepartmentPayload:
    department_id: str
    description: str
    active: bool

    def __post_init__(self):
        if not (self.department_id or "").strip():
            raise ValueError("missing department_id")
        if not (self.description or "").strip():
            raise ValueError("the description cannot be empty")
        if len(self.description) > 200:
            raise ValueError("the description is longer than 200 characters")
        if not isinstance(self.active, bool):
            raise ValueError("active must be true or false")


def _wanted(payload: dict) -> dict:
    return {
        "department_id": payload["department_id"],
        "description": payload["description"].strip(),
        "active": bool(payload["active"]),
    }


def department_send(client, command: OutboxCommand, payload: dict) -> dict:
    _require(payload, "department_id", "description")
    wanted = _wanted(payload)
    client.update_department(
        wanted["department_id"],
        description=wanted["description"],
        active=wanted["active"],
        replay_safe=REPLAY_AFTER_EXPIRY,
    )
    return wanted


def department_read_back(client, command: OutboxCommand, payload: dict) -> ReadBack:
    wanted = _wanted(payload)
    try:
        row = client.get_department_by_id(wanted["department_id"])
    except AiqPermanentError:
        return ReadBack(0, {})  # AIQ has no such department: the send says so, for good
    found = {
        "department_id": get(row, "DepartmentID"),
        "description": (get(row, "Description") or "").strip(),
        "active": bool(get(row, "IsActive", True)),
    }
    return ReadBack(1, wanted) if found == wanted else ReadBack(0, {})


def department_mirror(command: OutboxCommand, payload: dict, result: dict, notes) -> None:
    wanted = _wanted(payload)
    Department.objects.filter(entity=command.entity, department_id=wanted["department_id"]).update(
        name=wanted["description"], active=wanted["active"]
    )
