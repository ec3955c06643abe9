"""The app form's fields: reading them into an App message and finding which ones an edit changed.

Pure functions (no Streamlit), because the update mask is where an edit can go wrong: the server
refuses an empty mask, and a mask naming untouched fields would silently overwrite them with whatever
the form held. Validation itself is the server's (one set of rules, reported inline by the page).
"""

from __future__ import annotations

from serversinc.v1 import app_pb2

# The settable fields, in form order (name is the identity, set only at creation).
TEXT_FIELDS = ("repo_url", "branch", "health_path", "dockerfile", "context_dir", "server")
INT_FIELDS = ("port", "health_timeout_seconds", "build_timeout_seconds", "stop_grace_seconds")
FIELDS = ("repo_url", "branch", "port", "health_path", "dockerfile", "context_dir", "env", "server",
          "health_timeout_seconds", "build_timeout_seconds", "stop_grace_seconds")


class FormError(ValueError):
    """A field the form itself cannot turn into a value (the server validates the rest)."""


def parse_env(text: str) -> dict[str, str]:
    """KEY=VALUE per line; blank lines and lines starting with '#' are skipped."""
    env: dict[str, str] = {}
    for n, raw in enumerate((text or "").splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise FormError(f"environment line {n}: expected KEY=VALUE, got {line!r}")
        env[key.strip()] = value
    return env


def format_env(env) -> str:
    return "\n".join(f"{k}={v}" for k, v in sorted(dict(env).items()))


def app_from_values(name: str, values: dict) -> app_pb2.App:
    """An App message from form values (`env` as text); empty / zero fields mean the server's default."""
    app = app_pb2.App(name=name.strip())
    for f in TEXT_FIELDS:
        setattr(app, f, (values.get(f) or "").strip())
    for f in INT_FIELDS:
        setattr(app, f, int(values.get(f) or 0))
    app.env.update(parse_env(values.get("env", "")))
    return app


def changed_fields(current: app_pb2.App, edited: app_pb2.App) -> list[str]:
    """The update_mask: exactly the settable fields whose value differs."""
    paths = []
    for f in FIELDS:
        before, after = getattr(current, f), getattr(edited, f)
        if f == "env":
            before, after = dict(before), dict(after)
        if before != after:
            paths.append(f)
    return paths
