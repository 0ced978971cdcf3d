"""Callers' phone numbers never leave the service in clear: a keyed hash (HMAC-SHA256 with
IOC_HOTLINE_CALLER_KEY) links repeat callers, a masked form is for display. Anything else that might carry a
number (a malformed record on its way to the dead letters) is redacted first."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

# Vietnamese numbers as switchboards write them: +84…, 84…, 0… (9–10 digits after the prefix).
_NUMBER = re.compile(rb"(?<![0-9])(?:\+?84|0)[1-9][0-9]{7,9}(?![0-9])")
KEY_FILE = "secrets/hotline_caller_key"


def load_key(configured: str | None, home: Path) -> bytes:
    """The configured key, else the local one generated once under IOC_HOME (never in the repository)."""
    if configured:
        return configured.encode()
    path = home / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        os.replace(tmp, path)
    return path.read_text().strip().encode()


class CallerPrivacy:
    def __init__(self, key: bytes):
        if len(key) < 16:
            raise ValueError("IOC_HOTLINE_CALLER_KEY must be at least 16 characters")
        self._key = key

    def hash(self, number: str) -> str:
        digits = normalise(number)
        return hmac.new(self._key, digits.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def mask(number: str) -> str:
        """+84901234567 -> +8490*****67: the network prefix and the last two digits."""
        n = number.strip()
        if len(n) < 7:
            return "*" * len(n)
        return n[:5] + "*" * (len(n) - 7) + n[-2:]

    def redact(self, raw: bytes) -> bytes:
        """Every number-like run of digits in raw bytes replaced by its masked form and hash."""
        return _NUMBER.sub(
            lambda m: (self.mask(m.group().decode()) + "#" + self.hash(m.group().decode())[:12]).encode(),
            raw,
        )


def normalise(number: str) -> str:
    """+84901234567, 84901234567 and 0901234567 are the same subscriber."""
    digits = re.sub(r"[^0-9]", "", number)
    if digits.startswith("84"):
        digits = digits[2:]
    return digits.lstrip("0")


def contains_number(text: str | bytes) -> bool:
    raw = text.encode() if isinstance(text, str) else text
    return _NUMBER.search(raw) is not None
