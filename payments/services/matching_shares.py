"""A big matching run on every core: the payments split into shares that can never touch the
same invoice, each share loading its own customers' open invoices, matching its payments and
rendering their proposal rows in a forked child of its own, so the run's reading, matching
and rendering all use every core. The children are forked as soon as the run has read its
payers and the references its payments name, and each reads its range of customers' open
invoices (the bulk of the run's reading) while this process still plans the shares: which
payments each matches and which customers outside its range it must load too.

Why the result is exactly the one-process run's (tests/test_matching_shares.py compares them):
a payment's result depends only on the rows of the invoices it can reach, and on the amounts
earlier payments claimed on them. It can reach only invoices of its payer (resolved from the
payment and the payer tables) and invoices its reference keys name (hit_rows). So every
payment "touches" a set of customers; payments touching a common customer, directly or through
a chain, form a component, and a component is matched whole, in run order, by one share. The
share loads every open invoice of the component's customers, so it sees all that the payment
would see in one process, and claims made in other shares are on other customers' invoices.

Shares are customer id ranges (equal numbers of customers), each loading its range with one
ordered query; a component whose customers span ranges goes to the share of its lowest
customer, which also loads the others (their range's share loads them too but no payment of
that share touches them). In the benchmark components hold at most a few dozen payments.
"""

import logging
import os
import pickle
import select
import signal
import tempfile
import traceback
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import partial

from django.conf import settings
from django.db import connections

from core.forking import fork_map
from payments.matching.engine import resolve_customer
from payments.matching.index import RunInputs, payment_keys

logger = logging.getLogger(__name__)


class ShareFailed(Exception):
    """A share's process failed or died; its traceback or exit status is the message."""


@dataclass
class Share:
    customer_range: tuple  # [low, high) customer ids; None = unbounded
    extra_customers: set = field(default_factory=set)  # outside the range, in its components
    positions: list = field(default_factory=list)  # the payments' places in the run, in order


def share_ranges(inputs: RunInputs, workers: int) -> list[tuple]:
    """The shares' [low, high) customer id ranges (None: unbounded), equal numbers of customers
    each; a share per customer at most (no customers yet: one share, every payment unmatched)."""
    customer_ids = sorted(inputs.customers)
    workers = max(1, min(workers, len(customer_ids)))
    bounds = [customer_ids[len(customer_ids) * n // workers] for n in range(1, workers)]
    return [
        (None if n == 0 else bounds[n - 1], None if n == workers - 1 else bounds[n])
        for n in range(workers)
    ]


def plan_shares(payments, inputs: RunInputs, workers: int) -> list[Share]:
    """Split the run's payments into `workers` shares no two of which touch one customer.

    Each payment's payer is identified here, once (payment.resolved, which the shares read):
    half of the payments in a forked child (core.forking), the identification being pure."""
    shares = [Share(customer_range) for customer_range in share_ranges(inputs, workers)]
    workers = len(shares)
    bounds = [share.customer_range[1] for share in shares[:-1]]
    owners: dict[str, list] = {}
    for _invoice_id, customer_id, _field, key in inputs.hits:
        owners.setdefault(key, []).append(customer_id)
    payers = inputs.payer_index()
    parent: dict[int, int] = {}  # union-find over customer ids

    def find(customer_id):
        root = customer_id
        while (up := parent.get(root, root)) != root:
            root = up
        while customer_id != root:  # path compression
            parent[customer_id], customer_id = root, parent[customer_id]
        return root

    resolved = fork_map(
        partial(resolve_customer, payers), payments, minimum=settings.MATCHING_SHARES_MIN_PAYMENTS
    )
    touched = []
    for payment, (customer_id, via) in zip(payments, resolved, strict=True):
        customers = set()
        payment.resolved = customer_id, via
        if customer_id:
            customers.add(customer_id)
        else:  # the few customers the payer's name fits: the engine may choose among them
            customers.update((via.get("candidates") or {}).get("customer_ids") or ())
        for key in payment_keys(payment):
            found = owners.get(key)
            if found:
                customers.update(found)
        if len(customers) > 1:
            first, *others = customers
            parent.setdefault(first, first)
            root = find(first)
            for other in others:
                parent.setdefault(other, other)
                other_root = find(other)
                if other_root != root:
                    parent[other_root] = root
        touched.append(next(iter(customers)) if customers else None)
    lowest: dict[int, int] = {}  # component root -> its lowest customer id
    for customer_id in list(parent):
        root = find(customer_id)
        if customer_id < lowest.get(root, customer_id + 1):
            lowest[root] = customer_id

    def share_of(customer_id) -> int:
        return bisect_right(bounds, customer_id)

    for customer_id in parent:  # customers linked to others: their component's share loads them
        number = share_of(lowest[find(customer_id)])
        if share_of(customer_id) != number:
            shares[number].extra_customers.add(customer_id)
    payerless = 0
    for position, customer_id in enumerate(touched):
        if customer_id is None:  # touches no invoice at all: any share will do
            shares[payerless % workers].positions.append(position)
            payerless += 1
        else:
            root = find(customer_id)
            shares[share_of(lowest.get(root, root))].positions.append(position)
    return shares


def run_shares(count: int, read, plan, work) -> list:
    """A split run over `count` forked children, in share order: child n reads first
    (loaded = read(n): its bulk reading, started at once), then works on its part of the plan
    (work(plan()[n], loaded)); plan() runs here meanwhile and its parts reach the children
    pickled through unlinked temporary files. work's return values come back the same way.

    The children read with connections of their own and write nothing to the database: the run
    writes everything in one transaction afterwards. A failed child raises ShareFailed here; a
    child whose parent is gone ends instead of waiting for a plan that will never come.
    """
    parent = os.getpid()
    children = []  # (number, pid, inbox, signal write end, spool)
    try:
        for number in range(count):
            inbox, spool = tempfile.TemporaryFile(), tempfile.TemporaryFile()
            ready, go = os.pipe()
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the child (its work is checked through its output)
                os.close(go)
                for _number, _pid, _inbox, other_go, _spool in children:
                    os.close(other_go)  # an earlier child's: only the parent may hold it
                _child(parent, number, read, work, inbox, ready, spool)
            os.close(ready)
            children.append((number, pid, inbox, go, spool))
        parts = plan()
        for (_number, _pid, inbox, go, _spool), part in zip(children, parts, strict=True):
            pickle.dump(part, inbox, protocol=pickle.HIGHEST_PROTOCOL)
            inbox.flush()
            try:
                os.write(go, b"1")
            except BrokenPipeError:  # the child failed already: its spool says how
                pass
            os.close(go)
            inbox.close()
    except BaseException:
        for _number, pid, inbox, go, spool in children:
            _stop(pid)
            for handle in (inbox, spool):
                handle.close()
            try:
                os.close(go)
            except OSError:
                pass
        raise
    outputs, failures = [], []
    for number, pid, _inbox, _go, spool in children:
        _pid, status = os.waitpid(pid, 0)
        with spool:
            spool.seek(0)
            try:
                outcome, payload = pickle.load(spool)
            except (EOFError, pickle.UnpicklingError):
                outcome, payload = "error", f"share {number} ended with status {status}"
        if outcome == "ok":
            outputs.append(payload)
        else:
            failures.append(payload)
    if failures:
        raise ShareFailed("\n".join(failures))
    return outputs


def _child(parent: int, number: int, read, work, inbox, ready: int, spool) -> None:
    code = 1
    try:
        _forget_inherited_connections()
        loaded = read(number)
        while not select.select([ready], [], [], 1.0)[0]:
            if os.getppid() != parent:  # the run's process is gone: nobody wants this share
                os._exit(1)
        if not os.read(ready, 1):  # closed without a plan: the run gave up
            os._exit(1)
        inbox.seek(0)
        part = pickle.load(inbox)
        result = ("ok", work(part, loaded))
    except BaseException:
        result = ("error", traceback.format_exc())
    try:
        pickle.dump(result, spool, protocol=pickle.HIGHEST_PROTOCOL)
        spool.flush()
        code = 0 if result[0] == "ok" else 1
    finally:
        # no interpreter shutdown: it would close the parent's database connections, which
        # this process shares the sockets and file handles of
        os._exit(code)


_INHERITED = []  # kept referenced so the child never finalises (closes) the parent's handles


def _forget_inherited_connections() -> None:
    """The child opens its own connections; the parent's stay untouched (never used, never
    closed: a PostgreSQL 'terminate' on the shared socket would end the parent's session)."""
    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _INHERITED.append(connection.connection)
            connection.connection = None


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
