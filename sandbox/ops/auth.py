"""Login (1.1) and TokenGet / TokenRefresh (2.0)."""

import hmac

from sandbox.registry import AiqFailure, Reply, operation
from sandbox.store import loads


def _same(given, expected) -> bool:
    # Constant-time comparison: the sandbox should not teach clients to leak keys by timing.
    return expected is not None and hmac.compare_digest(str(given or ""), str(expected))


@operation("Login", auth=False)
def login(ctx, args):
    """A session token for (companyID, partnerKey, userKey); no token on a wrong key."""
    entity = ctx.db.execute(
        "SELECT * FROM entity WHERE id = ?", ((args.get("companyID") or "").strip(),)
    ).fetchone()
    if (
        entity is None
        or not _same(args.get("partnerKey"), entity["partner_key"])
        or not _same(args.get("userKey"), entity["user_key"])
    ):
        # AIQ answers a bad login with an empty LoginResult, not a fault.
        return Reply(raw={})
    return Reply(raw={"LoginResult": ctx.app.tokens.issue_session(entity["id"])})


def _client(ctx, args):
    row = ctx.db.execute(
        "SELECT * FROM api_client WHERE client_id = ?", ((args.get("clientId") or "").strip(),)
    ).fetchone()
    if row is None or not _same(args.get("clientSecret"), row["client_secret"]):
        raise AiqFailure("Invalid client credentials.", "INVALID_CLIENT")
    return row


def _pair_reply(op: str, access: str, refresh: str) -> Reply:
    return Reply(
        raw={
            f"{op}Result": {
                "Result": {"AccessToken": access, "RefreshToken": refresh},
                "Status": "Success",
                "ErrorCode": "SUCCESS",
                "ErrorMessage": "",
            },
            "AccessToken": access,
            "RefreshToken": refresh,
        }
    )


@operation("TokenGet", auth=False)
def token_get(ctx, args):
    client = _client(ctx, args)
    access, refresh = ctx.app.tokens.issue_pair(client["client_id"], loads(client["entities"]))
    return _pair_reply("TokenGet", access, refresh)


@operation("TokenRefresh", auth=False)
def token_refresh(ctx, args):
    client = _client(ctx, args)
    pair = ctx.app.tokens.refresh(client["client_id"], args.get("refreshToken"))
    if pair is None:
        raise AiqFailure("The refresh token is not valid or has expired.", "INVALID_GRANT")
    return _pair_reply("TokenRefresh", *pair)
