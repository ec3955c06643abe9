"""Encryption of secrets at rest (app secret env, agent secrets, webhook secrets) with Fernet.

The key comes from SERVERSINC_SECRET_KEY, or from a key file the control plane creates once under
its home (mode 0600) so the embedded stack needs no set-up. Losing the key makes the stored
secrets unreadable: back it up with the database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "fernet:"
KEY_ENV = "SERVERSINC_SECRET_KEY"
MASK = "********"


class SecretBoxError(Exception):
    """A stored secret cannot be decrypted with the configured key."""


class SecretBox:
    def __init__(self, key: bytes | str):
        self._fernet = Fernet(key)

    @classmethod
    def from_env_or_file(cls, home: Path) -> "SecretBox":
        key = os.environ.get(KEY_ENV, "").strip()
        if key:
            return cls(key)
        path = home / "secret.key"
        if not path.exists():
            home.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def encrypt(self, plain: str) -> str:
        return PREFIX + self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, stored: str) -> str:
        if not stored:
            return ""
        if not stored.startswith(PREFIX):
            raise SecretBoxError("stored secret is not encrypted")
        try:
            return self._fernet.decrypt(stored[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise SecretBoxError("stored secret cannot be decrypted: wrong SERVERSINC_SECRET_KEY?") from None

    def encrypt_map(self, values: dict[str, str]) -> str:
        return self.encrypt(json.dumps(values, sort_keys=True)) if values else ""

    def decrypt_map(self, stored: str) -> dict[str, str]:
        return json.loads(self.decrypt(stored)) if stored else {}


def masked(values: dict[str, str]) -> dict[str, str]:
    return {key: MASK for key in values}
