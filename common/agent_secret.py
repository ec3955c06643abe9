"""The agent secret's home: `TUGBOAT_SECRET_KEY` in the agent's `.env`, read or generated once.

Shared by the agent (which generates it at first start) and the compose stack's `init` step (which
makes it before the control plane starts and reads it for the control plane), so both read and write
the file the same way: an exclusive lock so concurrent first starts agree on one secret, an atomic
rewrite with mode 0600, every other line kept byte for byte.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import secrets
from pathlib import Path

from common.files import write_atomic

log = logging.getLogger(__name__)

SECRET_ENV = "TUGBOAT_SECRET_KEY"
MIN_SECRET_LENGTH = 32


class SecretFileError(RuntimeError):
    """The `.env` holds a secret that must not be used (too short)."""


_ENV_LINE = re.compile(rb"\s*(?:export\s+)?" + SECRET_ENV.encode() + rb"\s*=(.*?)\s*")


def _parse_value(raw: bytes) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[:1] == value[-1:] and value[:1] in (b'"', b"'"):
        value = value[1:-1]
    return value.decode("utf-8", "replace")


def read_env_secret(env_file: Path) -> str:
    """TUGBOAT_SECRET_KEY from a dotenv file ("" when the file or key is absent; last one wins)."""
    try:
        data = Path(env_file).read_bytes()
    except FileNotFoundError:
        return ""
    found = ""
    for line in data.splitlines():
        match = _ENV_LINE.fullmatch(line)
        if match:
            found = _parse_value(match.group(1))
    return found


def load_or_create_secret(env_file: Path) -> str:
    """The secret saved in `env_file`, or a new random one appended to it.

    Under an exclusive lock on `<env_file>.lock`, so concurrent first starts agree on one secret;
    the file is rewritten atomically (temp file, fsync, rename) with mode 0600 and every other
    line kept byte for byte.
    """
    env_file = Path(env_file)
    env_file.parent.mkdir(parents=True, exist_ok=True)
    lock_path = env_file.with_name(env_file.name + ".lock")
    with open(lock_path, "a+b") as lock:
        os.chmod(lock_path, 0o600)
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            existing = read_env_secret(env_file)
            if existing:
                if len(existing) < MIN_SECRET_LENGTH:
                    raise SecretFileError(f"{SECRET_ENV} in {env_file} is shorter than "
                                     f"{MIN_SECRET_LENGTH} characters")
                if env_file.stat().st_mode & 0o077:
                    os.chmod(env_file, 0o600)
                return existing
            try:
                data = env_file.read_bytes()
            except FileNotFoundError:
                data = b""
            secret = secrets.token_urlsafe(48)
            if data and not data.endswith(b"\n"):
                data += b"\n"
            write_atomic(env_file, data + f"{SECRET_ENV}={secret}\n".encode())
            log.info("generated a new agent secret and saved it in %s", env_file)
            return secret
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
