"""Connection deadlines on a one-second timer wheel, checked lazily.

Each timed object has a ``deadline`` (monotonic seconds) and a ``timer_slot``
(the whole second of the wheel bucket it sits in). Moving a deadline later —
what every request on a keep-alive connection does — is a plain attribute store:
the object stays in its old bucket, and when that bucket comes due it is put
into the bucket of its new deadline. Only moving a deadline earlier touches the
wheel. So the cost is O(1) per request and O(due objects) per tick, never a scan
of all connections.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Protocol


class Timed(Protocol):
    deadline: float
    timer_slot: int
    closed: bool


class TimerWheel:
    """Buckets of timed objects keyed by whole seconds."""

    def __init__(self, now: float) -> None:
        self._buckets: dict[int, list[Any]] = {}
        self._last_tick = int(now)

    def __len__(self) -> int:
        return sum(len(b) for b in self._buckets.values())

    def set_deadline(self, obj: Timed, deadline: float) -> None:
        """Give ``obj`` a new deadline (earlier or later)."""
        obj.deadline = deadline
        slot = max(math.ceil(deadline), self._last_tick + 1)
        if slot < obj.timer_slot or obj.timer_slot == 0:
            obj.timer_slot = slot
            bucket = self._buckets.get(slot)
            if bucket is None:
                self._buckets[slot] = [obj]
            else:
                bucket.append(obj)

    def expire(self, now: float, on_timeout: Callable[[Any], None]) -> None:
        """Call ``on_timeout(obj)`` for every object whose deadline has passed."""
        second = int(now)
        buckets = self._buckets
        for slot in range(self._last_tick + 1, second + 1):
            bucket = buckets.pop(slot, None)
            if not bucket:
                continue
            for obj in bucket:
                if obj.closed or obj.timer_slot != slot:
                    continue  # gone, or moved to an earlier bucket already handled
                if obj.deadline <= now:
                    obj.timer_slot = 0
                    on_timeout(obj)
                else:
                    obj.timer_slot = 0
                    self.set_deadline(obj, obj.deadline)
        self._last_tick = second
