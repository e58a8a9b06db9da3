"""Valid payloads for tests whose subject is not the payload (claims, wake-ups, bulk enqueue):
outbox_enqueue checks each payload against its kind's dataclass (ledger/outbox/payloads.py)."""


def receipt_payload(**overrides) -> dict:
    return {
        "customer_code": "ACME",
        "bank_account_code": "BANK1",
        "amount": "10.00",
        "payment_date": "2026-01-15",
        "currency": "GBP",
        **overrides,
    }


def allocate_payload(**overrides) -> dict:
    return {
        "amount": "10.00",
        "allocation_date": "2026-01-15",
        "paying_transaction_id": None,
        "settled_transaction_id": 1,
        "currency": "GBP",
        **overrides,
    }
