"""Run one localstripe whose objects are kept in a file of its own.

localstripe keeps its objects in /tmp/localstripe.pickle, so two instances on one machine (the
demo runs one per company's Stripe account) would share, and overwrite, one store. This runs
localstripe with its store in FILE instead:

    python scripts/localstripe_instance.py FILE [localstripe arguments: --port N --from-scratch]
"""

import pickle
import sys

import localstripe.resources as resources
from localstripe.server import start


def main() -> None:
    path, arguments = sys.argv[1], sys.argv[2:]

    def load(store) -> None:
        try:
            with open(path, "rb") as f:
                kept = pickle.load(f)  # noqa: S301 (written by this process, in var/)
        except FileNotFoundError:
            return
        store.clear()
        store.update(kept)

    def dump(store) -> None:
        with open(path, "wb") as f:
            pickle.dump(store, f, protocol=pickle.HIGHEST_PROTOCOL)

    resources.Store.try_load_from_disk = load
    resources.Store.dump_to_disk = dump
    sys.argv = ["localstripe", *arguments]
    start()


if __name__ == "__main__":
    main()
