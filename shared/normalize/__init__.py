"""Normalisation of contact keys: phone numbers to E.164, e-mail addresses case-folded."""

from shared.normalize.email import normalize_email
from shared.normalize.phone import is_mobile, normalize_phone

__all__ = ["is_mobile", "normalize_email", "normalize_phone"]
