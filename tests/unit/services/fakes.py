"""Fakes shared by the control-plane unit tests."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone


class FakeClock:
    """Stands in for utcnow (or, with `seconds=True`, time.monotonic): time moves only when the test says."""

    def __init__(self, *, seconds: bool = False):
        self._seconds = seconds
        self.now = datetime(2024, 1, 1, tzinfo=timezone.utc)

    def __call__(self):
        return self.now.timestamp() if self._seconds else self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)
