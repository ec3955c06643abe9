"""Dashboard test fixtures: the real control plane (re-exported from the integration fixtures) and an
AppTest factory pointed at it, with the dashboard's cached gRPC client cleared around each test."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import control_plane, sample_repo, sample_url  # noqa: F401

APP_FILE = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


@pytest.fixture
def fresh_client_cache():
    from dashboard.api import clear_cache

    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def dashboard(monkeypatch, fresh_client_cache):
    """make(address) -> an AppTest of dashboard/app.py talking to the control plane at `address`."""
    from streamlit.testing.v1 import AppTest

    def make(address: str) -> AppTest:
        # SERVERSINC_TOKEN is the control plane fixture's admin token, as a user's would be.
        monkeypatch.setenv("SERVERSINC_API", address)
        return AppTest.from_file(str(APP_FILE), default_timeout=30)

    return make
