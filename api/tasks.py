"""django-q2 entry points for the API (scheduled by `manage.py setup_schedules`). Thin: they
call api/services.py and api/webhooks.py."""

from api.services import idempotency_keys_purge
from api.webhooks import webhooks_deliver_due


def idempotency_keys_purge_task() -> int:
    """Hourly: idempotency keys older than API_IDEMPOTENCY_HOURS (never under 24) forgotten."""
    return idempotency_keys_purge()


def webhooks_deliver_task() -> dict[str, int]:
    """Woken after a commit that made deliveries, and every minute (schedule api-webhooks):
    posts every due webhook delivery (new ones and retries whose backoff ran out)."""
    return webhooks_deliver_due()
