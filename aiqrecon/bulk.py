"""Moved to core.bulk (the ground floor). Kept so branches written before the move still
import; nothing in the repository imports it."""

from core.bulk import *  # noqa: F403
