"""Signals of our own, next to Django's auth signals (received in staff/audit_hooks.py)."""

from django.dispatch import Signal

# Sent by the login throttle when sign-in is locked for a username (or a client address):
# login_locked_out.send(sender=None, username=..., ip=..., until=None or an aware datetime)
login_locked_out = Signal()
