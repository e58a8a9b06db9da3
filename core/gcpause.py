"""gc_paused: run a block that allocates many long-lived objects without the cyclic GC.

Python's cyclic collector runs whenever allocations outnumber deallocations by a threshold,
and every older-generation pass walks every tracked object alive. A block that builds a
large structure (a matching index, a 100,000-entry statement's rows) triggers it again and
again over the same growing heap: measured as a third of a camt.053 import and most of a
matching run. The blocks that use this make no reference cycles, so nothing is leaked by
leaving the collector off while they run.
"""

import gc
from contextlib import contextmanager


@contextmanager
def gc_paused():
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        # What the block made is long-lived (an index, a run's results, a file's rows): move it
        # straight to the oldest generation (freeze + unfreeze only relink lists) instead of
        # letting the first young collection after enable() walk it all.
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
