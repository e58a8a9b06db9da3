"""API clients: create (token shown once), revoke, authenticate; idempotency keys."""

import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models.expressions import RawSQL
from django.utils import timezone

from api.models import ApiClient, IdempotencyKey
from core.bulk import insert_rows
from staff.models import Role
from staff.services import ROLE_NAMES, audit_log, user_has_role

TOKEN_PREFIX = "aiq_"  # noqa: S105 (what every token starts with, not a secret)
LAST_USED_EVERY = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_client_create(*, actor, name: str, entity, scope: str, role: str = Role.CLERK):
    """A new client and its token. The token is returned once and never stored in clear."""
    if not user_has_role(actor, Role.ADMIN):
        raise PermissionDenied("Creating API clients needs the admin role.")
    if role not in (Role.CLERK, Role.APPROVER):
        raise ValidationError("An API client acts as a clerk or an approver.")
    name = (name or "").strip()
    if not name:
        raise ValidationError("Name the client.")
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        user = User.objects.create(username=f"api:{name}"[:150], is_active=True)
        user.set_unusable_password()  # it never logs in to the browser
        user.save(update_fields=["password"])
        user.groups.add(Group.objects.get(name=role))
        client = ApiClient(
            name=name,
            entity=entity,
            user=user,
            scope=scope,
            token_prefix=prefix,
            token_hash=_digest(token),
            created_by=actor,
        )
        client.full_clean()
        client.save()
        audit_log(
            actor=actor,
            action="api_client.create",
            obj=client,
            summary=f"API client {name} ({scope}, acts as {role}) for {entity.name}",
            after={"name": name, "scope": scope, "role": role, "entity": entity.company_id},
        )
    return client, token


def api_client_revoke(*, actor, client: ApiClient) -> ApiClient:
    if not user_has_role(actor, Role.ADMIN):
        raise PermissionDenied("Revoking API clients needs the admin role.")
    with transaction.atomic():
        client = ApiClient.objects.select_for_update().get(pk=client.pk)
        if client.revoked_at is not None:
            return client
        client.revoked_at, client.revoked_by = timezone.now(), actor
        client.save(update_fields=["revoked_at", "revoked_by"])
        # this process forgets it at once (and again at commit, in case another request
        # read it before then), every other one within API_TOKEN_CACHE_SECONDS
        _tokens_forget()
        transaction.on_commit(_tokens_forget)
        audit_log(
            actor=actor,
            action="api_client.revoke",
            obj=client,
            summary=f"API client {client.name} revoked",
            before={"active": True},
            after={"active": False},
        )
    return client


# The clients this process authenticated lately, by their token's SHA-256: digest ->
# (monotonic time it is good until, the client as read). Only a token whose digest matched a
# stored, unrevoked client is kept; a wrong token is always looked up. A revocation (or a
# service user made inactive) is seen by this process at once and by the others within
# API_TOKEN_CACHE_SECONDS: the price of not reading the client on every request.
_tokens: dict[str, tuple[float, "ApiClient"]] = {}
_tokens_lock = threading.Lock()
TOKENS_KEPT = 1000


def _tokens_forget() -> None:
    with _tokens_lock:
        _tokens.clear()


def api_client_for_token(token: str) -> ApiClient | None:
    """The active client whose token this is, compared in constant time; None otherwise.
    A request gets its own copy of the client, its user and company."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    digest = _digest(token)
    kept = _tokens.get(digest)
    if kept is not None and kept[0] > time.monotonic():
        return _own_copy(kept[1])
    client = _client_read(token, digest)
    seconds = settings.API_TOKEN_CACHE_SECONDS
    if client is not None and seconds > 0:
        with _tokens_lock:
            if len(_tokens) >= TOKENS_KEPT:
                _tokens.clear()
            _tokens[digest] = (time.monotonic() + seconds, _own_copy(client))
    return client


def _own_copy(client: ApiClient) -> ApiClient:
    """A copy of the client with copies of its user and company (Django copies a row's
    related-object cache with it, not the related rows): a request may set attributes on them."""
    user, entity = copy.copy(client.user), copy.copy(client.entity)
    client = copy.copy(client)
    client.user, client.entity = user, entity
    return client


def api_client_mark_used(client: ApiClient) -> None:
    """Note when the client was last used: one write a minute at most, not per request."""
    now = timezone.now()
    if client.last_used_at is not None and now - client.last_used_at <= LAST_USED_EVERY:
        return
    ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
    client.last_used_at = now
    kept = _tokens.get(client.token_hash)
    if kept is not None:
        kept[1].last_used_at = now


def _client_read(token: str, digest: str) -> ApiClient | None:
    prefix = token[len(TOKEN_PREFIX) :].split("_", 1)[0]
    # the service user's roles in the same query (user_has_role reads them from the user)
    client = (
        ApiClient.objects.select_related("user", "entity")
        .filter(token_prefix=prefix, revoked_at__isnull=True)
        .annotate(role_bits=_role_bits())
        .first()
    )
    if client is None or not hmac.compare_digest(client.token_hash, digest):
        return None
    client.user.__dict__[ROLE_NAMES] = {
        role.value for bit, role in enumerate(Role) if client.role_bits & (1 << bit)
    }
    return client


def _role_bits() -> RawSQL:
    """The client's user's roles as bits (1 << position in Role), summed in one subquery: a
    correlated Exists per role costs more to compile than a query of its own."""
    membership = User.groups.through
    cases = " ".join("WHEN %s THEN " + str(1 << bit) for bit, _role in enumerate(Role))
    return RawSQL(
        f"(SELECT COALESCE(SUM(CASE g.name {cases} ELSE 0 END), 0)"  # noqa: S608 (table names)
        f" FROM {membership._meta.db_table} ug JOIN {Group._meta.db_table} g"
        f" ON g.id = ug.group_id WHERE ug.user_id = {ApiClient._meta.db_table}.user_id)",
        [role.value for role in Role],
    )


# --- idempotency ------------------------------------------------------------------------------


def request_hash(method: str, path: str, body) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


class KeyReused(Exception):
    """The key was used before with another request."""


def idempotent(*, client: ApiClient, key: str, fingerprint: str, run):
    """(status, body, replayed) of the first request with this key: `run(key_id)` is called
    only if the key is new (key_id: its row's id, unique), in one transaction with the key's
    row, so its effects and the stored answer commit together (or neither does). A concurrent
    request with the same key waits on the key's unique index until the first commits, then
    answers what the first answered."""
    with transaction.atomic():
        key_id = _key_claim(client, key, fingerprint)
        if key_id is None:
            row = IdempotencyKey.objects.get(client=client, key=key)
            if row.request_hash != fingerprint:
                raise KeyReused()
            return row.response_status, row.response_body, True
        status, body = run(key_id)
        if status >= 500:  # never stored: roll back whatever ran
            transaction.set_rollback(True)
            return status, body, False
        IdempotencyKey.objects.filter(pk=key_id).update(response_status=status, response_body=body)
        return status, body, False


def _key_claim(client: ApiClient, key: str, fingerprint: str) -> int | None:
    """Insert the key's row (202 until the answer is known); its id, or None when the client
    used the key before. ON CONFLICT DO NOTHING on the (client, key) constraint: no savepoint,
    and a concurrent first use is waited for (PostgreSQL) before this one is told it exists."""
    rows = insert_rows(
        IdempotencyKey,
        ("client", "key", "request_hash", "response_status", "response_body"),
        [(client.pk, key, fingerprint, 202, {})],
        returning=("id",),
        skip_conflicts_on=("client", "key"),
    )
    return rows[0][0] if rows else None


def idempotency_keys_purge(*, now=None) -> int:
    """Keys older than API_IDEMPOTENCY_HOURS (at least 24) are forgotten."""
    hours = max(int(settings.API_IDEMPOTENCY_HOURS), 24)
    cutoff = (now or timezone.now()) - timedelta(hours=hours)
    deleted, _ = IdempotencyKey.objects.filter(created_at__lt=cutoff).delete()
    return deleted
