"""A serving process freezes what start-up built and collects its young generation less
often (gateway/heap.py); checked in a fresh interpreter, as it changes the whole process."""

from __future__ import annotations

import subprocess
import sys

from gateway.heap import YOUNG_GENERATION_THRESHOLD

SCRIPT = """
import gc
from gateway.heap import settle_heap
before = gc.get_threshold()
settle_heap()
print(gc.get_freeze_count(), *gc.get_threshold(), *before)
"""


def test_settle_heap_freezes_start_up_and_raises_only_the_young_threshold() -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True
    ).stdout.split()
    frozen, young, middle, old, _, middle_before, old_before = map(int, out)
    assert frozen > 1000  # the modules start-up imported
    assert young == YOUNG_GENERATION_THRESHOLD
    assert (middle, old) == (middle_before, old_before)
