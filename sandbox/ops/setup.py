"""Set-up data: banks, GL accounts, tax codes, GL defaults, analysis (BI) dimensions and
departments, intercompany connections."""

import base64
from decimal import Decimal

from sandbox.registry import NOT_FOUND, VALIDATION, AiqFailure, Reply, operation
from sandbox.store import dumps, loads

_GL_DEFAULT_KEYS = (
    "GLCategoryID",
    "GLSubCategoryID",
    "TaxID",
    "GLGroupID",
    "DepartmentID",
    "AuthorUserID",
)


def _version(*parts) -> str:
    return base64.b64encode(":".join(str(p) for p in parts).encode()).decode()


@operation("GetBankList")
def get_bank_list(ctx, args):
    rows = ctx.db.execute(
        "SELECT * FROM bank WHERE entity_id = ? ORDER BY id", (ctx.entity_id,)
    ).fetchall()
    banks = [
        {
            "GroupOnlinePaymentDuringReconciliation": False,
            "BankID": row["id"],
            "Code": row["gl_code"],
            "BankAccountCode": row["bank_account_code"],
            "Name": row["name"],
            "CurrencyCode": row["currency"],
            "OverdraftLimit": Decimal(0),
            "InternationalBankAccountNumber": row["iban"] or None,
            "SortCode": row["sort_code"] or None,
            "OnlineBankType": "None",
            "RowVersionNumber": _version("bank", row["id"]),
        }
        for row in rows
    ]
    return Reply(result={"Bank": banks})


@operation("GetGLAccountList")
def get_gl_account_list(ctx, args):
    """Each GL account as an ArrayOfString: [code, name, category]."""
    rows = ctx.db.execute(
        "SELECT * FROM gl_account WHERE entity_id = ? ORDER BY code", (ctx.entity_id,)
    ).fetchall()
    accounts = [{"string": [row["code"], row["name"], row["category"]]} for row in rows]
    return Reply(result={"ArrayOfString": accounts})


@operation("GetTaxCodeList")
def get_tax_code_list(ctx, args):
    rows = ctx.db.execute(
        "SELECT * FROM tax_code WHERE entity_id = ? ORDER BY code", (ctx.entity_id,)
    ).fetchall()
    tax_gl = ctx.db.execute(
        "SELECT code FROM gl_account WHERE entity_id = ? AND category = 'tax'", (ctx.entity_id,)
    ).fetchone()
    taxes = [
        {
            "ID": row["code"],
            "Code": row["code"],
            "Description": row["description"],
            "RowVersionNumber": _version("tax", row["code"]),
            "Rate": Decimal(row["rate"]),
            "IsDefault": bool(row["is_default"]),
            "IsStandardRate": bool(row["is_default"]),
            "SalesTaxInclude": False,
            "PurchasesTaxInclude": False,
            "DebitGlAccno": tax_gl["code"] if tax_gl else None,
            "CreditGlAccno": tax_gl["code"] if tax_gl else None,
        }
        for row in rows
    ]
    return Reply(result={"Tax": taxes})


# The company's credit terms (AIQ setup): a customer's CreditTermID names one.
CREDIT_TERMS = (("7", 7, False), ("14", 14, False), ("30", 30, False), ("60", 60, False),
                ("30EOM", 30, True))  # fmt: skip


@operation("GetCreditTermList")
def get_credit_term_list(ctx, args):
    terms = [
        {"ID": code, "Code": code, "RowVersionNumber": _version("term", code),
         "Description": f"{days} days" + (" after the end of the month" if eom else ""),
         "CreditDays": days, "EndOfMonth": eom}
        for code, days, eom in CREDIT_TERMS
    ]  # fmt: skip
    return Reply(result={"CreditTerm": terms})


@operation("GetGLDefaults")
def get_gl_defaults(ctx, args):
    return Reply(result=loads(ctx.entity["gl_defaults"]))


@operation("SaveGLDefaults", write=True)
def save_gl_defaults(ctx, args):
    defaults = args.get("glDefaults")
    if not defaults:
        raise AiqFailure("No GL defaults were sent.", VALIDATION)
    tax = defaults.get("TaxID")
    if (
        tax
        and not ctx.db.execute(
            "SELECT 1 FROM tax_code WHERE entity_id = ? AND code = ?", (ctx.entity_id, tax)
        ).fetchone()
    ):
        raise AiqFailure(f"Tax code '{tax}' does not exist.", NOT_FOUND)
    department = defaults.get("DepartmentID")
    if department and _department(ctx, department) is None:
        raise AiqFailure(f"Department '{department}' does not exist.", NOT_FOUND)
    saved = {key: defaults.get(key) for key in _GL_DEFAULT_KEYS if defaults.get(key) is not None}
    ctx.db.execute("UPDATE entity SET gl_defaults = ? WHERE id = ?", (dumps(saved), ctx.entity_id))
    return Reply()


@operation("GetAnalysisDimensionSetup")
def get_analysis_dimension_setup(ctx, args):
    dimensions = ctx.db.execute(
        "SELECT * FROM analysis_dimension WHERE entity_id = ? ORDER BY position", (ctx.entity_id,)
    ).fetchall()
    result = []
    for dimension in dimensions:
        codes = ctx.db.execute(
            "SELECT * FROM analysis_code WHERE entity_id = ? AND position = ? ORDER BY code",
            (ctx.entity_id, dimension["position"]),
        ).fetchall()
        result.append(
            {
                "Code": dimension["code"],
                "Description": dimension["description"],
                "DimensionCodes": {
                    "WSAnalysisDimensionCode": [
                        {"Code": c["code"], "Description": c["description"]} for c in codes
                    ]
                },
            }
        )
    return Reply(result={"WSAnalysisDimension": result})


def _department(ctx, department_id):
    return ctx.db.execute(
        "SELECT * FROM department WHERE entity_id = ? AND id = ?", (ctx.entity_id, department_id)
    ).fetchone()


def _department_record(row) -> dict:
    record = {"DepartmentID": row["id"], "Description": row["description"]}
    for n in range(1, 7):
        record[f"AnalysisCode{n}"] = row[f"a{n}"]
    record["IsActive"] = bool(row["is_active"])
    return record


@operation("GetDepartmentById")
def get_department_by_id(ctx, args):
    row = _department(ctx, (args.get("departmentId") or "").strip())
    if row is None:
        raise AiqFailure(f"Department '{args.get('departmentId')}' does not exist.", NOT_FOUND)
    return Reply(result=_department_record(row))


@operation("GetDepartmentList")
def get_department_list(ctx, args):
    rows = ctx.db.execute(
        "SELECT * FROM department WHERE entity_id = ? ORDER BY id", (ctx.entity_id,)
    ).fetchall()
    return Reply(result={"Department": [_department_record(row) for row in rows]})


@operation("GetDepartmentsByAnalysisCode")
def get_departments_by_analysis_code(ctx, args):
    """Departments whose analysis code N is in aNFilter, for every non-empty filter."""
    query = args.get("query") or {}
    where, params = ["entity_id = ?"], [ctx.entity_id]
    for n in range(1, 7):
        codes = [c for c in (query.get(f"a{n}Filter") or {}).get("string") or [] if c]
        if codes:
            where.append(f"a{n} IN ({','.join('?' * len(codes))})")
            params.extend(codes)
    rows = ctx.db.execute(
        f"SELECT * FROM department WHERE {' AND '.join(where)} ORDER BY id", params
    ).fetchall()
    return Reply(result={"Department": [_department_record(row) for row in rows]})


@operation("UpdateDepartment", write=True)
def update_department(ctx, args):
    department_id = (args.get("departmentID") or "").strip()
    row = _department(ctx, department_id)
    if row is None:
        raise AiqFailure(f"Department '{department_id}' does not exist.", NOT_FOUND)
    description = args.get("newDescription")
    if description is not None and not description.strip():
        raise AiqFailure("The description cannot be empty.", VALIDATION)
    active = args.get("active")
    ctx.db.execute(
        "UPDATE department SET description = ?, is_active = ? WHERE entity_id = ? AND id = ?",
        (
            description.strip() if description is not None else row["description"],
            int(active) if active is not None else row["is_active"],
            ctx.entity_id,
            department_id,
        ),
    )
    return Reply()


@operation("GetInterCompanyConnectionList")
def get_inter_company_connection_list(ctx, args):
    rows = ctx.db.execute(
        "SELECT * FROM intercompany WHERE entity_id = ? OR remote_entity_id = ? ORDER BY id",
        (ctx.entity_id, ctx.entity_id),
    ).fetchall()
    connections = []
    for row in rows:
        sides = [(row["entity_id"], row["local_account_code"], row["local_ledger"]),
                 (row["remote_entity_id"], row["remote_account_code"], row["remote_ledger"])]  # fmt: skip
        if row["entity_id"] != ctx.entity_id:
            sides.reverse()
        local, remote = (_side(ctx, *side) for side in sides)
        connections.append({"Local": local, "Remote": remote})
    return Reply(result={"WSInterCompanyConnection": connections})


def _side(ctx, entity_id, account_code, ledger) -> dict:
    entity = ctx.db.execute("SELECT * FROM entity WHERE id = ?", (entity_id,)).fetchone()
    account = ctx.db.execute(
        "SELECT * FROM account WHERE entity_id = ? AND ledger = ? AND code = ?",
        (entity_id, ledger, account_code),
    ).fetchone()
    return {
        "EntityID": entity_id,
        "EntityName": entity["name"],
        "EntityBaseCurrencyCode": entity["base_currency"],
        "AccountID": account["id"] if account else 0,
        "AccountCode": account_code,
        "AccountName": account["name"] if account else None,
        "AccountCurrencyCode": account["currency"] if account else None,
    }
