"""Moved to core.money (the ground floor). Kept so branches written before the move still
import; nothing in the repository imports it."""

from core.money import *  # noqa: F403
