"""Sign-in lock-out, shared by every process through the database (staff.models.LoginThrottle).

Counted per username and per client address (a password sprayed over many usernames from one
address is stopped too). The address is REMOTE_ADDR, or, behind a proxy, the entry the trusted
proxy put in LOGIN_CLIENT_ADDRESS_HEADER (X-Forwarded-For): the LOGIN_TRUSTED_PROXY_COUNT-th
from the right, which a client cannot forge. Each lock-out lasts LOGIN_LOCKOUT_SECONDS, doubling
with each further failure while locked (at most a day). A success clears only its username's
count, never the address's.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from staff.models import LoginThrottle, Role
from staff.services import audit_log, user_has_role

MAX_LOCKOUT_SECONDS = 86400


def client_ip(request) -> str:
    if request is None:
        return ""
    header = settings.LOGIN_CLIENT_ADDRESS_HEADER
    if header:
        meta_key = "HTTP_" + header.upper().replace("-", "_")
        hops = [h.strip() for h in request.META.get(meta_key, "").split(",") if h.strip()]
        count = settings.LOGIN_TRUSTED_PROXY_COUNT
        if len(hops) >= count:
            return hops[-count][:64]
    return request.META.get("REMOTE_ADDR", "")[:64]


def _limits(username: str, ip: str) -> list[tuple[str, int]]:
    keys = [(f"user:{username.strip().lower()[:150]}", settings.LOGIN_FAILURE_LIMIT)]
    if ip:
        keys.append((f"address:{ip}", settings.LOGIN_ADDRESS_FAILURE_LIMIT))
    return keys


def login_locked_until(*, username: str, ip: str):
    """When the lock on this username or address ends, or None when sign-in is allowed."""
    keys = [key for key, _ in _limits(username, ip)]
    now = timezone.now()
    until = (
        LoginThrottle.objects.filter(key__in=keys, locked_until__gt=now)
        .order_by("-locked_until")
        .values_list("locked_until", flat=True)
        .first()
    )
    return until


def login_attempts_serialised(*, username: str) -> None:
    """Take the username's throttle row for update: concurrent sign-ins for one username (other
    processes, other hosts) then check, try the password and count one after another, so the
    limit is the number of real tries (without it two processes both saw 4 failures and both
    tried). Call inside the sign-in's transaction."""
    key = _limits(username, "")[0][0]
    LoginThrottle.objects.get_or_create(key=key, defaults={"window_started_at": timezone.now()})
    LoginThrottle.objects.select_for_update().filter(key=key).first()


def login_failed(*, username: str, ip: str):
    """Count one failure; returns the end of a lock-out this failure started (else None)."""
    now = timezone.now()
    window = timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    started = None
    with transaction.atomic():
        for key, limit in _limits(username, ip):
            LoginThrottle.objects.get_or_create(key=key, defaults={"window_started_at": now})
            row = LoginThrottle.objects.select_for_update().get(key=key)
            locked = row.locked_until is not None and row.locked_until > now
            if not locked and row.window_started_at < now - window:
                row.failures, row.window_started_at = 0, now  # an old run of failures
            row.failures += 1
            if row.failures >= limit:
                doublings = min(row.failures - limit, 16)
                seconds = min(settings.LOGIN_LOCKOUT_SECONDS * 2**doublings, MAX_LOCKOUT_SECONDS)
                row.locked_until = now + timedelta(seconds=seconds)
                started = max(started or row.locked_until, row.locked_until)
            row.save(update_fields=["failures", "window_started_at", "locked_until"])
    return started


def login_succeeded(*, username: str, ip: str) -> None:
    LoginThrottle.objects.filter(key=_limits(username, ip)[0][0]).delete()


def login_unlock(*, keys: list[str], actor) -> int:
    """An admin lifts a lock-out now ("unlock now"): the chosen rows' counts and locks are
    cleared and each is audited with what it was, in the same transaction. Only an admin (or a
    superuser) may; a locked-out person asks one rather than waiting out a doubling lock."""
    from django.core.exceptions import PermissionDenied

    if not user_has_role(actor, Role.ADMIN):
        raise PermissionDenied("Unlocking a sign-in needs the admin role.")
    now = timezone.now()
    with transaction.atomic():
        rows = list(LoginThrottle.objects.select_for_update().filter(key__in=keys).order_by("key"))
        for row in rows:
            kind, _, who = row.key.partition(":")
            what = f"user {who!r}" if kind == "user" else f"address {who}"
            locked = row.locked_until is not None and row.locked_until > now
            audit_log(
                actor=actor,
                action="auth.unlock",
                object_type="auth.user" if kind == "user" else "auth.address",
                object_id=who[:64],
                summary=f"sign-in unlocked for {what} after {row.failures} failed tries"
                + (
                    f" (was locked until {timezone.localtime(row.locked_until):%d/%m/%Y %H:%M})"
                    if locked
                    else " (was not locked)"
                ),
                before={
                    "failures": row.failures,
                    "locked_until": row.locked_until.isoformat() if row.locked_until else None,
                },
                after={"failures": 0, "locked_until": None},
            )
        LoginThrottle.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return len(rows)
