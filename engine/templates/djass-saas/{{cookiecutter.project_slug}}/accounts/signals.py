"""Signals other apps can hook into without accounts knowing about them."""

from django.dispatch import Signal

# Sent after a new account is created and logged in through the sign-up page,
# with the arguments ``user`` and ``request``.
user_signed_up = Signal()
