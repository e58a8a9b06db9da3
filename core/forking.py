"""fork_map: a pure function over a long list on both cores, the second part in a forked child.

A matching run's serial steps (reading each payment's reference texts into keys, identifying
each payer) are pure Python over 100,000 payments: one core works while the other waits. Here
the list's tail is computed in a child forked for the purpose (it sees every object of this
process as it was at the fork: no arguments to send) and its results come back pickled through
an unlinked temporary file, while this process computes the head. The results are exactly the
one-process results, in order: the function must be pure (it may fill caches of its own).

The child never touches the database (the function must not) and ends with os._exit, so the
parent's connections, sockets and files are left as they were. If the child fails or dies, its
part is computed here, so a failure costs time, never a result.
"""

import logging
import os
import pickle
import signal
import tempfile

from core.gcpause import gc_paused

logger = logging.getLogger(__name__)


def fork_map(function, items: list, *, minimum: int = 10_000, head_share: float = 0.5) -> list:
    """[function(item) for item in items], the part after `head_share` of them in a forked
    child when there are at least `minimum` items (and the platform can fork)."""
    if len(items) < max(minimum, 2) or not hasattr(os, "fork"):
        return [function(item) for item in items]
    cut = int(len(items) * head_share)
    spool = tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: its work is checked through the results
        _child(function, items[cut:], spool)
    try:
        head = [function(item) for item in items[:cut]]
    except BaseException:
        _stop(pid)
        spool.close()
        raise
    _pid, status = os.waitpid(pid, 0)
    with spool, gc_paused():  # unpickling makes many objects: no GC passes over them
        spool.seek(0)
        try:
            tail = pickle.load(spool)
        except (EOFError, pickle.UnpicklingError, ValueError):
            logger.warning(
                "fork_map: the child ended with status %s; its part is done here", status
            )
            tail = [function(item) for item in items[cut:]]
    return head + tail


def _child(function, items, spool) -> None:
    code = 1
    try:
        result = [function(item) for item in items]
        pickle.dump(result, spool, protocol=pickle.HIGHEST_PROTOCOL)
        spool.flush()
        code = 0
    except BaseException:
        logger.exception("fork_map: the child failed")
    finally:
        # no interpreter shutdown: it would close the parent's database connections, whose
        # sockets and file handles this process shares
        os._exit(code)


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
