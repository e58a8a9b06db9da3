"""django-q2 entry points for the API (scheduled by `manage.py setup_schedules`). Thin: they
call api/services.py and api/webhooks.py."""

from api.services import idempotency_keys_purge


def idempotency_keys_purge_task() -> int:
    """Hourly: idempotency keys older than API_IDEMPOTENCY_HOURS (never under 24) forgotten."""
    return idempotency_keys_purge()
