"""The words of the suppression list, kept apart from the policy models so the command line can show
them in ``--help`` without loading pydantic's models (``campaign --help`` stays fast)."""

from __future__ import annotations

REASONS = ("unsubscribed", "hard_bounce", "complaint", "do_not_contact", "erased")
"""Reasons a customer can be on the suppression list."""

ALL_CHANNELS = "*"
"""``channel`` of a suppression that applies to every channel."""
