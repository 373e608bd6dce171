"""Wall-clock jumps are told apart from time passing."""

from __future__ import annotations

from signalbeam.agent.clock import ClockWatch, clock_jump


def test_time_passing_is_not_a_jump() -> None:
    assert clock_jump((1000.0, 50.0), (1015.0, 65.0)) is None
    assert clock_jump((1000.0, 50.0), (1020.0, 65.0)) is None


def test_forward_and_backward_jumps_are_measured() -> None:
    assert clock_jump((1000.0, 50.0), (4615.0, 65.0)) == 3600.0
    assert clock_jump((1000.0, 50.0), (-2585.0, 65.0)) == -3600.0


def test_watch_compares_with_the_previous_reading() -> None:
    watch = ClockWatch(threshold=30.0)
    assert watch.check(wall=1000.0, steady_now=10.0) is None
    assert watch.check(wall=1015.0, steady_now=25.0) is None
    assert watch.check(wall=915.0, steady_now=40.0) == -115.0
    assert watch.check(wall=930.0, steady_now=55.0) is None
