"""How late this process's event loop runs: a late loop is load, not a Redis outage.

A Redis call times out when its answer is not read within the socket timeout. Under CPU
saturation the answer may have arrived long before: the event loop was busy with other
requests and read it too late. Taking that for an outage would switch every Redis user
to its per-process fallback (rate limits then count per process: N instances admit N
times a limit), exactly when the gateway is under the most load, or under attack.

`LoopLag` runs a heartbeat timer every `INTERVAL_SECONDS`; a beat that runs
`LATE_SECONDS` or more after it was due marks the loop late for `WINDOW_SECONDS`. A
healthy loop runs its timers within milliseconds; the Redis timeouts are 1-2 s.
"""

from __future__ import annotations

import asyncio

INTERVAL_SECONDS = 0.1
LATE_SECONDS = 0.25
WINDOW_SECONDS = 5.0


class LoopLag:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._late_until = 0.0
        self.worst = 0.0  # the latest beat's lateness when it was late, for logs

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
        now = self._loop.time()
        late = now - self._due
        if late >= LATE_SECONDS:
            self.worst = late
            self._late_until = now + WINDOW_SECONDS
        self._schedule()

    def late(self) -> bool:
        """Whether the loop ran a timer `LATE_SECONDS` late in the last `WINDOW_SECONDS`."""
        loop = self._loop
        return loop is not None and not loop.is_closed() and loop.time() < self._late_until

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
