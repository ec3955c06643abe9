"""The fetch's environment and command: nothing can prompt, slow http remotes are dropped."""

from __future__ import annotations

from agent.git_fetch import fetch_command, fetch_env


def test_no_prompt_anywhere():
    env = fetch_env({"GIT_SSH": "/usr/bin/ssh", "SSH_ASKPASS": "/usr/bin/ask", "PATH": "/bin"})
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_ASKPASS"] == "" and env["SSH_ASKPASS"] == ""
    assert "GIT_SSH" not in env and env["PATH"] == "/bin"
    assert "BatchMode=yes" in env["GIT_SSH_COMMAND"] and "ConnectTimeout=" in env["GIT_SSH_COMMAND"]


def test_command_disables_credential_helpers_and_sets_low_speed_limits():
    command = fetch_command(["origin", "abc"])
    settings = [command[i + 1] for i, part in enumerate(command) if part == "-c"]
    assert "credential.helper=" in settings and "core.askPass=" in settings
    assert any(s.startswith("http.lowSpeedLimit=") for s in settings)
    assert any(s.startswith("http.lowSpeedTime=") for s in settings)
    assert command[-3:] == ["--no-progress", "origin", "abc"]
