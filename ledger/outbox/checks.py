"""Start-up checks: refuse a django-q2 configuration that would break the outbox's guarantees.

Registered in LedgerConfig.ready(); `manage.py check`, runserver and qcluster all run them.
"""

from django.conf import settings
from django.core.checks import Error, Warning, register


@register("aiqrecon")
def check_q_cluster(app_configs=None, **kwargs):
    conf = getattr(settings, "Q_CLUSTER", {})
    problems = []
    if not conf.get("orm") and not conf.get("redis"):
        problems.append(
            Error(
                "Q_CLUSTER names no broker: django-q2 then silently uses a Redis on localhost.",
                hint='Set Q_CLUSTER["orm"] = "default" (embedded) or REDIS_URL (scaled out).',
                id="aiqrecon.E101",
            )
        )
    timeout = conf.get("timeout")
    retry = conf.get("retry")
    if timeout is None or retry is None or retry <= timeout:
        problems.append(
            Error(
                f"Q_CLUSTER retry ({retry}) must be larger than timeout ({timeout}): otherwise "
                "the ORM broker hands a running task to a second worker.",
                hint="Keep retry at about 3x timeout (settings derive both from Q_TIMEOUT_SECONDS).",
                id="aiqrecon.E102",
            )
        )
    elif retry < timeout * 2:
        problems.append(
            Warning(
                f"Q_CLUSTER retry ({retry}) leaves little room over timeout ({timeout}) for time "
                "spent waiting in a cluster's local queue; duplicate deliveries become likely.",
                id="aiqrecon.W103",
            )
        )
    if not conf.get("ack_failures"):
        problems.append(
            Error(
                "Q_CLUSTER ack_failures must be True: the outbox counts attempts and backs off "
                "itself; django-q2 redelivering failed tasks would hammer AIQ.",
                id="aiqrecon.E104",
            )
        )
    if conf.get("catch_up", True):
        problems.append(
            Error(
                "Q_CLUSTER catch_up must be False: a restart would replay every missed schedule.",
                id="aiqrecon.E105",
            )
        )
    if "save_limit" not in conf:
        problems.append(
            Warning("Q_CLUSTER save_limit is not set deliberately.", id="aiqrecon.W106")
        )
    lease = getattr(settings, "OUTBOX_LEASE_SECONDS", 0)
    drain = getattr(settings, "OUTBOX_DRAIN_SECONDS", 0)
    if timeout is not None and drain + lease > timeout:
        problems.append(
            Error(
                f"OUTBOX_DRAIN_SECONDS ({drain}) + OUTBOX_LEASE_SECONDS ({lease}) exceed the task "
                f"timeout ({timeout}): drains would be killed in the middle of AIQ calls.",
                hint="Raise Q_TIMEOUT_SECONDS or lower the drain budget / AIQ timeouts.",
                id="aiqrecon.E107",
            )
        )
    call = getattr(settings, "AIQ_CONNECT_TIMEOUT_SECONDS", 0) + getattr(
        settings, "AIQ_READ_TIMEOUT_SECONDS", 0
    )
    calls = getattr(settings, "OUTBOX_CALLS_PER_STEP", 5)
    if lease < calls * call:
        # leases are renewed before each step of each row (and for rows waiting in a batch),
        # so what must fit in one lease is the longest step, never the whole batch
        problems.append(
            Error(
                f"OUTBOX_LEASE_SECONDS ({lease}) is shorter than one outbox step: {calls} AIQ "
                f"calls of up to {call} s each. A row could lose its lease while its write is "
                "still on its way, be taken by another worker and be sent twice.",
                hint=f"Set OUTBOX_LEASE_SECONDS to at least {calls * call}.",
                id="aiqrecon.E108",
            )
        )
    settle = getattr(settings, "OUTBOX_SETTLE_SECONDS", 0)
    if settle < call:
        problems.append(
            Error(
                f"OUTBOX_SETTLE_SECONDS ({settle}) is shorter than one AIQ call ({call} s): an "
                "uncertain write would be read back (and resent) while AIQ may still commit it.",
                id="aiqrecon.E109",
            )
        )
    return problems
