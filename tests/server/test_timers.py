"""``TimerWheel``: one-second buckets of deadlines, expired lazily (``microweb/server/timers.py``)."""
from __future__ import annotations

from typing import Any

import pytest

from microweb.server.timers import TimerWheel


class Timed:
    """The three attributes the wheel uses, as a connection has them."""

    def __init__(self, name: str = "") -> None:
        self.name = name
        self.deadline = 0.0
        self.timer_slot = 0
        self.closed = False

    def __repr__(self) -> str:
        return f"Timed({self.name!r}, deadline={self.deadline})"


class CountingTimed(Timed):
    """A ``Timed`` that counts how often the wheel reads its attributes."""

    reads = 0

    def __getattribute__(self, name: str) -> Any:
        if name in ("deadline", "timer_slot", "closed"):
            type(self).reads += 1
        return object.__getattribute__(self, name)


class Expired:
    """An ``on_timeout`` callback that records what it was given."""

    def __init__(self) -> None:
        self.objects: list[Any] = []

    def __call__(self, obj: Any) -> None:
        self.objects.append(obj)


def expire(wheel: TimerWheel, now: float) -> list[Any]:
    expired = Expired()
    wheel.expire(now, expired)
    return expired.objects


def test_a_deadline_expires_at_its_second_and_not_before() -> None:
    wheel = TimerWheel(100.0)
    obj = Timed("a")
    wheel.set_deadline(obj, 105.5)
    assert obj.deadline == 105.5
    assert obj.timer_slot == 106  # the bucket of the whole second at or after the deadline
    for now in (100.5, 101.0, 104.99, 105.0, 105.4999):
        assert expire(wheel, now) == [], now
    assert expire(wheel, 105.5) == []  # the deadline's bucket (106) is not due yet
    assert expire(wheel, 106.0) == [obj]
    assert obj.timer_slot == 0
    assert expire(wheel, 200.0) == []  # reported once


def test_a_whole_second_deadline_expires_exactly_then() -> None:
    wheel = TimerWheel(10.0)
    obj = Timed()
    wheel.set_deadline(obj, 12.0)
    assert expire(wheel, 11.999) == []
    assert expire(wheel, 12.0) == [obj]


@pytest.mark.parametrize("deadline", [10.0, 10.25, 11.0, 11.5, 12.0, 17.75])
def test_never_reported_before_its_deadline(deadline: float) -> None:
    wheel = TimerWheel(10.0)
    obj = Timed()
    wheel.set_deadline(obj, deadline)
    now = 10.0
    reported_at = None
    for _ in range(200):
        now += 0.1
        if expire(wheel, now):
            reported_at = now
            break
    assert reported_at is not None
    assert reported_at >= deadline
    assert reported_at < max(deadline, 10.0) + 1.0 + 0.1  # and at most about a second late


def test_a_deadline_in_the_past_goes_to_the_next_tick() -> None:
    wheel = TimerWheel(50.2)
    obj = Timed()
    wheel.set_deadline(obj, 3.0)
    assert obj.timer_slot == 51
    assert expire(wheel, 50.9) == []
    assert expire(wheel, 51.0) == [obj]


def test_moving_a_deadline_later_by_a_plain_store_re_buckets_it() -> None:
    wheel = TimerWheel(0.0)
    obj = Timed()
    wheel.set_deadline(obj, 5.0)
    obj.deadline = 20.0  # what a keep-alive request does: no wheel call at all
    assert len(wheel) == 1
    assert expire(wheel, 5.0) == []
    assert obj.timer_slot == 20  # moved to the bucket of its new deadline
    assert len(wheel) == 1
    assert expire(wheel, 19.9) == []
    assert expire(wheel, 20.0) == [obj]
    assert len(wheel) == 0


def test_moving_a_deadline_later_with_set_deadline_leaves_it_in_its_bucket() -> None:
    wheel = TimerWheel(0.0)
    obj = Timed()
    wheel.set_deadline(obj, 5.0)
    wheel.set_deadline(obj, 30.5)
    assert obj.deadline == 30.5
    assert obj.timer_slot == 5  # O(1): not moved until its old bucket comes due
    assert len(wheel) == 1
    assert expire(wheel, 10.0) == []
    assert obj.timer_slot == 31
    assert expire(wheel, 30.9) == []
    assert expire(wheel, 31.0) == [obj]


def test_a_deadline_moved_later_many_times_expires_once_at_the_last() -> None:
    wheel = TimerWheel(0.0)
    obj = Timed()
    wheel.set_deadline(obj, 2.0)
    for later in range(3, 50):
        wheel.set_deadline(obj, float(later))
    assert len(wheel) == 1  # moving later adds nothing to the wheel
    seen = []
    for now in range(1, 60):
        for expired in expire(wheel, float(now)):
            seen.append((now, expired))
    assert seen == [(49, obj)]


def test_moving_a_deadline_earlier_works() -> None:
    wheel = TimerWheel(0.0)
    obj = Timed()
    wheel.set_deadline(obj, 30.0)
    wheel.set_deadline(obj, 3.5)
    assert obj.timer_slot == 4
    assert expire(wheel, 3.9) == []
    assert expire(wheel, 4.0) == [obj]
    # the stale entry in bucket 30 does not report it a second time
    assert expire(wheel, 40.0) == []


def test_moved_earlier_then_re_armed_into_its_old_bucket_is_reported_once() -> None:
    wheel = TimerWheel(0.0)
    obj = Timed()
    wheel.set_deadline(obj, 10.0)
    wheel.set_deadline(obj, 2.0)  # leaves a stale entry in bucket 10
    assert expire(wheel, 2.0) == [obj]
    wheel.set_deadline(obj, 9.5)  # back into bucket 10, next to the stale entry
    assert obj.timer_slot == 10
    assert expire(wheel, 10.0) == [obj]
    assert expire(wheel, 20.0) == []


def test_closed_objects_are_not_reported() -> None:
    wheel = TimerWheel(0.0)
    open_, closed = Timed("open"), Timed("closed")
    wheel.set_deadline(open_, 1.0)
    wheel.set_deadline(closed, 1.0)
    closed.closed = True
    assert expire(wheel, 1.0) == [open_]
    assert len(wheel) == 0  # and the closed one's entry is gone with its bucket


def test_a_closed_object_is_not_re_bucketed_either() -> None:
    wheel = TimerWheel(0.0)
    obj = Timed()
    wheel.set_deadline(obj, 1.0)
    obj.deadline = 50.0
    obj.closed = True
    assert expire(wheel, 2.0) == []
    assert len(wheel) == 0
    assert expire(wheel, 60.0) == []


def test_objects_with_different_deadlines_expire_in_order_of_seconds() -> None:
    wheel = TimerWheel(0.0)
    objects = [Timed(str(i)) for i in range(10)]
    for i, obj in enumerate(objects):
        wheel.set_deadline(obj, 10.0 - i)  # set latest first
    reported: list[Timed] = []
    for now in range(1, 12):
        batch = expire(wheel, float(now))
        assert all(obj.deadline <= now for obj in batch)
        reported.extend(batch)
    assert reported == objects[::-1]


def test_one_expire_call_catches_up_on_skipped_seconds() -> None:
    wheel = TimerWheel(0.0)
    a, b, c = Timed("a"), Timed("b"), Timed("c")
    wheel.set_deadline(a, 1.5)
    wheel.set_deadline(b, 4.0)
    wheel.set_deadline(c, 9.0)
    assert expire(wheel, 5.0) == [a, b]  # buckets 2..5 handled in one call
    assert expire(wheel, 9.0) == [c]


def test_many_objects_expire_in_one_tick_at_a_cost_of_the_due_ones() -> None:
    wheel = TimerWheel(0.0)
    due = [CountingTimed(f"due{i}") for i in range(10_000)]
    later = [CountingTimed(f"later{i}") for i in range(10_000)]
    for obj in due:
        wheel.set_deadline(obj, 5.25)
    for obj in later:
        wheel.set_deadline(obj, 500.0)
    assert len(wheel) == 20_000

    CountingTimed.reads = 0
    expired = expire(wheel, 6.0)
    assert len(expired) == 10_000
    assert set(map(id, expired)) == set(map(id, due))
    # A bounded number of attribute reads per *due* object; the 10,000 later ones are not looked at.
    assert CountingTimed.reads <= 5 * len(due)
    assert len(wheel) == 10_000

    CountingTimed.reads = 0
    assert expire(wheel, 499.0) == []
    assert CountingTimed.reads == 0  # nothing due: no object is touched
    assert len(expire(wheel, 500.0)) == 10_000
    assert len(wheel) == 0


def test_len_counts_wheel_entries() -> None:
    wheel = TimerWheel(0.0)
    assert len(wheel) == 0
    a, b = Timed("a"), Timed("b")
    wheel.set_deadline(a, 3.0)
    assert len(wheel) == 1
    wheel.set_deadline(b, 3.0)
    assert len(wheel) == 2
    wheel.set_deadline(a, 8.0)  # later: same entry
    assert len(wheel) == 2
    wheel.set_deadline(b, 1.0)  # earlier: a new entry; the old one is dropped when its bucket comes due
    assert len(wheel) == 3
    assert expire(wheel, 1.0) == [b]
    assert len(wheel) == 2  # a (bucket 3) and b's stale entry (bucket 3)
    assert expire(wheel, 3.0) == []
    assert len(wheel) == 1  # a, re-bucketed into 8
    assert expire(wheel, 8.0) == [a]
    assert len(wheel) == 0
