"""The agent secret's bootstrap: TUGBOAT_SECRET_KEY, else the .env one, else a new one saved there
atomically (0600, other lines byte for byte, one secret even when first starts race)."""

from __future__ import annotations

import multiprocessing
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import AgentConfig
from agent.trust import (MIN_SECRET_LENGTH, SECRET_ENV, TrustError, load_or_create_secret,
                         read_env_secret, resolve_secret)

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _secret_lines(data: bytes) -> list[bytes]:
    return [line for line in data.splitlines() if line.startswith(SECRET_ENV.encode() + b"=")]


def test_created_with_mode_0600_and_reused(tmp_path):
    env = tmp_path / "agent" / ".env"
    first = load_or_create_secret(env)
    assert len(first) >= 60 and _mode(env) == 0o600
    assert env.read_bytes() == f"{SECRET_ENV}={first}\n".encode()
    assert load_or_create_secret(env) == first
    assert resolve_secret("", env) == first
    assert not [p for p in env.parent.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("existing", [
    b"# settings for this agent\n\nFOO=bar\n  # indented comment\nQUOTED=\"a b\"\n",
    b"FOO=bar\n\n\n# no trailing newline",
    b"",
    b"CRLF=1\r\nOTHER=2\r\n",
    b"\xff\xfe binary-ish bytes\n",
])
def test_existing_lines_kept_byte_for_byte(tmp_path, existing):
    env = tmp_path / ".env"
    env.write_bytes(existing)
    env.chmod(0o644)
    secret = load_or_create_secret(env)
    data = env.read_bytes()
    prefix = existing if not existing or existing.endswith(b"\n") else existing + b"\n"
    assert data == prefix + f"{SECRET_ENV}={secret}\n".encode()
    assert _mode(env) == 0o600
    assert load_or_create_secret(env) == secret and env.read_bytes() == data


def test_saved_secret_read_back_in_dotenv_forms(tmp_path):
    env = tmp_path / ".env"
    value = "s" * MIN_SECRET_LENGTH
    for line in (f"{SECRET_ENV}={value}", f"export {SECRET_ENV}={value}",
                 f'{SECRET_ENV}="{value}"', f"  {SECRET_ENV} = '{value}'  "):
        env.write_text(f"A=1\n{line}\nB=2\n")
        assert read_env_secret(env) == value
        assert load_or_create_secret(env) == value
        assert env.read_text() == f"A=1\n{line}\nB=2\n"  # untouched


def test_short_saved_secret_is_refused(tmp_path):
    env = tmp_path / ".env"
    env.write_text(f"{SECRET_ENV}=short\n")
    with pytest.raises(TrustError, match="shorter"):
        load_or_create_secret(env)


def _first_start(path: str) -> str:
    return load_or_create_secret(Path(path))


def test_concurrent_first_starts_agree_on_one_secret(tmp_path):
    env = tmp_path / ".env"
    env.write_bytes(b"# keep me\nFOO=bar")
    context = multiprocessing.get_context("spawn")  # real separate processes, separate flocks
    with context.Pool(8) as pool:
        results = pool.map(_first_start, [str(env)] * 8)
    assert len(set(results)) == 1
    data = env.read_bytes()
    assert data == b"# keep me\nFOO=bar\n" + f"{SECRET_ENV}={results[0]}\n".encode()
    assert len(_secret_lines(data)) == 1 and _mode(env) == 0o600


def test_environment_secret_wins_and_is_not_written(tmp_path, monkeypatch):
    home = tmp_path / "agent"
    home.mkdir()
    (home / ".env").write_text("OTHER=1\n")
    value = "e" * 40
    monkeypatch.setenv(SECRET_ENV, value)
    config = AgentConfig.from_env(home=home, router="direct")
    assert config.secret == value and value not in repr(config)
    assert resolve_secret(config.secret, config.env_file) == value
    assert (home / ".env").read_text() == "OTHER=1\n"
    monkeypatch.setenv(SECRET_ENV, "too-short")
    with pytest.raises(TrustError):
        resolve_secret(AgentConfig.from_env(home=home, router="direct").secret, home / ".env")


def test_agent_process_generates_and_reuses_its_secret(tmp_path, agent_certs):
    """The real `tugboat` console script: first start writes .env, the second reuses it, and the
    secret never appears in its output."""
    from tests.conftest import free_port

    home = tmp_path / "agent"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUGBOAT_")}
    secrets_seen = []
    for _ in range(2):
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.main", "--listen", f"127.0.0.1:{port}", "--home", str(home),
             "--router", "direct", "--certs", str(agent_certs)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            first_line = ""
            output = []
            for line in proc.stdout:
                output.append(line)
                if line.startswith("tugboat listening"):
                    first_line = line
                    break
            assert "mutual TLS" in first_line, "".join(output)
        finally:
            proc.terminate()
            rest, _ = proc.communicate(timeout=30)
        secret = read_env_secret(home / ".env")
        assert secret and secret not in "".join(output) + rest
        secrets_seen.append(secret)
    assert secrets_seen[0] == secrets_seen[1]
    assert _mode(home / ".env") == 0o600


def test_missing_certificates_is_a_clear_startup_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TUGBOAT_")}
    certs = tmp_path / "nocerts"
    done = subprocess.run(
        [sys.executable, "-m", "agent.main", "--listen", "127.0.0.1:0", "--home", str(tmp_path / "a"),
         "--router", "direct", "--certs", str(certs)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"no certificates in {certs}: run scripts/certs.py --out {certs}" in done.stdout
    assert "--insecure" in done.stdout
