"""When a stream's first sample was captured or rendered, from the moments its blocks came."""

from __future__ import annotations

from collections import deque

__all__ = ["SampleClock"]

WINDOW_S = 2.0
"""The stream's sample clock is the earliest anchor of the blocks of this long."""


class SampleClock:
    """When sample 0 of a stream was captured, judged from the blocks of the last
    :data:`WINDOW_S`: a block is handed over after its last sample was captured,
    so each bounds that moment from above, and the least delayed one gives it. Blocks held
    up and then handed over in a burst (a busy process) do not move it; samples really
    lost move it once the window has passed them."""

    def __init__(self) -> None:
        self._anchors: deque[tuple[float, float]] = deque()
        """(when a block came, sample 0 by it), the anchors increasing: a sliding minimum."""

    def update(self, at_s: float, samples_s: float) -> float:
        """A block came at ``at_s`` with ``samples_s`` seconds of the stream in all so far;
        returns the moment sample 0 was captured."""
        anchor = at_s - samples_s
        while self._anchors and self._anchors[-1][1] >= anchor:
            self._anchors.pop()
        self._anchors.append((at_s, anchor))
        while self._anchors[0][0] < at_s - WINDOW_S:
            self._anchors.popleft()
        return self._anchors[0][1]
