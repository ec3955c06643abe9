"""A build's deadline counts only the seconds it is not waiting for a build slot; a wait has a
bound of its own; whatever expires is said once, and nothing after the call ended."""

from __future__ import annotations

from services.agents.build_deadline import BUILD, SLOT_WAIT, BuildDeadline


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Timers:
    """threading.Timer's shape; the test fires the armed one, and sees every one armed."""

    def __init__(self) -> None:
        self.made: list[Timers.Timer] = []

    class Timer:
        def __init__(self, seconds, function, args=()) -> None:
            self.seconds, self.function, self.args = seconds, function, args
            self.cancelled = self.started = False
            self.daemon = False

        def start(self) -> None:
            self.started = True

        def cancel(self) -> None:
            self.cancelled = True

        def fire(self) -> None:  # a timer fires even after a cancel that came too late
            self.function(*self.args)

    def __call__(self, seconds, function, args=()):
        self.made.append(self.Timer(seconds, function, args))
        return self.made[-1]

    @property
    def armed(self) -> "Timers.Timer":
        live = [t for t in self.made if not t.cancelled]
        assert len(live) == 1, live
        return live[0]


def deadline(build=60.0, slot_wait=600.0):
    clock, timers, expired = Clock(), Timers(), []
    d = BuildDeadline(build, slot_wait, lambda: expired.append(d.expired), clock=clock, timer=timers)
    return d, clock, timers, expired


def test_a_build_that_never_waits_has_its_whole_deadline():
    d, clock, timers, expired = deadline(build=60)
    assert timers.armed.seconds == 60 and timers.armed.started and timers.armed.daemon
    timers.armed.fire()
    assert expired == [BUILD] and d.expired == BUILD


def test_the_wait_for_a_slot_does_not_count_against_the_build():
    d, clock, timers, expired = deadline(build=60, slot_wait=600)
    clock.now += 10  # fetching and packing the context: the build's own time
    d.waiting(True)
    assert timers.armed.seconds == 600  # the wait's own bound
    clock.now += 500  # other builds run
    d.waiting(False)
    assert timers.armed.seconds == 50  # 60 - 10: the wait took nothing from it
    clock.now += 50
    timers.armed.fire()
    assert expired == [BUILD]


def test_a_wait_past_its_bound_expires_as_a_slot_wait():
    d, clock, timers, expired = deadline(build=60, slot_wait=30)
    d.waiting(True)
    clock.now += 30
    timers.armed.fire()
    assert expired == [SLOT_WAIT]
    d.waiting(False)  # the slot came as it expired: nothing is armed again
    assert len(timers.made) == 2


def test_a_stale_timer_and_a_closed_deadline_expire_nothing():
    d, clock, timers, expired = deadline(build=60)
    first = timers.armed
    d.waiting(True)
    first.fire()  # cancelled as the wait began, but already running
    assert expired == [] and d.expired == ""
    d.waiting(True)  # said twice: nothing changes
    assert len(timers.made) == 2
    d.close()
    assert timers.made[-1].cancelled
    timers.made[-1].fire()
    assert expired == []
