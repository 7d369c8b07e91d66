"""How late this process's event loop runs: a late loop is load, not a Redis outage.

A Redis call times out when its answer is not read within the socket timeout. Under CPU
saturation the answer may have arrived long before: the event loop was busy with other
requests and read it too late. Taking that for an outage would switch every Redis user
to its per-process fallback (rate limits then count per process: N instances admit N
times a limit), exactly when the gateway is under the most load, or under attack.

`LoopLag` runs a heartbeat timer every `INTERVAL_SECONDS` and remembers the beats that
ran `LATE_SECONDS` or more after they were due. `late_since(started)` says whether the
loop stalled that long after a call began: only lateness within the call counts (a stall
at start-up, before the call, says nothing about it). A healthy loop runs its timers
within milliseconds; the Redis timeouts are 1-2 s.
"""

from __future__ import annotations

import asyncio
import collections

INTERVAL_SECONDS = 0.1
LATE_SECONDS = 0.25
REMEMBERED = 64  # late beats kept (a few seconds' worth even when every beat is late)


class LoopLag:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._late: collections.deque[tuple[float, float]] = collections.deque(
            maxlen=REMEMBERED
        )  # (due, ran) of the late beats, in loop time

    def start(self) -> None:
        """Begin the heartbeat on the running loop (no-op without one, or if started)."""
        if self._handle is not None:
            return
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._schedule()

    def _schedule(self) -> None:
        assert self._loop is not None
        self._due = self._loop.time() + INTERVAL_SECONDS
        self._handle = self._loop.call_at(self._due, self._beat)

    def _beat(self) -> None:
        assert self._loop is not None
        ran = self._loop.time()
        if ran - self._due >= LATE_SECONDS:
            self._late.append((self._due, ran))
        self._schedule()

    def now(self) -> float:
        """The loop's clock, for `late_since` (0 when the heartbeat never started)."""
        loop = self._loop
        return loop.time() if loop is not None and not loop.is_closed() else 0.0

    def late_since(self, started: float) -> bool:
        """Whether the loop stalled `LATE_SECONDS` or more after `started` (`now()`)."""
        if not started:
            return False
        for due, ran in reversed(self._late):
            if ran - max(due, started) >= LATE_SECONDS:
                return True
            if ran < started:
                return False
        return False

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
