"""Deliveries shaped and signed exactly as GitHub sends them, for the tests and the benchmark.

Payloads start from GitHub's documented examples in payloads/ (compact JSON, as GitHub sends),
with the commit, ref and repository URL filled in. Signing is done here independently of the
bridge's code: HMAC-SHA256 of the raw body, hex, in `X-Hub-Signature-256: sha256=<hex>`.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import uuid
from functools import lru_cache
from pathlib import Path

import requests

PAYLOADS = Path(__file__).parent / "payloads"
ZERO = "0" * 40


@lru_cache
def _load(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def ping_payload() -> dict:
    return copy.deepcopy(_load("ping"))


def push_payload(*, repo_url: str, after: str, ref: str = "refs/heads/main", before: str = ZERO,
                 message: str = "Update index.html", pusher: str = "octocat", deleted: bool = False) -> dict:
    """A push event. `repo_url` becomes `repository.clone_url` (a local path in tests)."""
    p = copy.deepcopy(_load("push"))
    p.update(ref=ref, before=before, after=after, deleted=deleted, created=before == ZERO and not deleted,
             compare=f"https://github.com/Codertocat/Hello-World/compare/{before[:12]}...{after[:12]}")
    p["repository"]["clone_url"] = repo_url
    p["pusher"]["name"] = pusher
    if deleted:
        p.update(commits=[], head_commit=None)
    else:
        for commit in (p["head_commit"], *p["commits"]):
            commit.update(id=after, message=message,
                          url=f"https://github.com/Codertocat/Hello-World/commit/{after}")
    if ref.startswith("refs/tags/"):
        p["base_ref"] = "refs/heads/main"
    return p


def encode(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def new_delivery() -> str:
    return str(uuid.uuid4())


def headers(event: str, body: bytes, secret: str | None, delivery: str | None) -> dict:
    """The headers GitHub sends with a delivery (`secret` None: unsigned, like a hook without one)."""
    h = {
        "Accept": "*/*",
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/7e4a1b2",
        "X-GitHub-Event": event,
        "X-GitHub-Hook-ID": "109948940",
        "X-GitHub-Hook-Installation-Target-ID": "186853002",
        "X-GitHub-Hook-Installation-Target-Type": "repository",
    }
    if delivery is not None:
        h["X-GitHub-Delivery"] = delivery
    if secret is not None:
        h["X-Hub-Signature"] = "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
        h["X-Hub-Signature-256"] = sign(secret, body)
    return h


class Sender:
    """POSTs deliveries to a running bridge at `base` (http://127.0.0.1:PORT)."""

    def __init__(self, base: str):
        self.base = base
        self.session = requests.Session()

    def send(self, path: str, event: str, payload: dict | bytes, secret: str | None, *,
             delivery: str | None = "new", extra: dict | None = None, timeout: float = 30) -> requests.Response:
        body = payload if isinstance(payload, bytes) else encode(payload)
        if delivery == "new":
            delivery = new_delivery()
        h = headers(event, body, secret, delivery)
        h.update(extra or {})
        return self.session.post(self.base + path, data=body, headers=h, timeout=timeout)
