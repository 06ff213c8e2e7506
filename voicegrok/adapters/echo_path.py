"""How loud the speaker is in the microphone (the echo path's coupling), and whether it is
heard there at all: followed by the echo canceller (:mod:`.echo`) frame by frame."""

from __future__ import annotations

from collections import deque

import numpy as np

__all__ = ["ACTIVE_POW", "REACH_FRAMES", "EchoPath"]

ACTIVE_POW = 100.0**2
"""Far-end power (16-bit, smoothed) above which the speaker counts as playing."""
REACH_FRAMES = 20
"""Far-end frames (200 ms) whose echo may be in a microphone frame: the delay AEC3 is
told, the echo path's own (with the far end's smoothing, which spreads it further)."""
_NO_ECHO_DB = -30.0
"""Coupling floor under which the speaker is not heard in the microphone."""
_HEARD_DB, _HEARD_CORR, _HEARD_FRAMES = -25.0, 0.8, 50
"""Taken for a headset, the speaker is heard in the microphone after all when, over the last
50 frames it played, the coupling's median is -25 dB or louder and the microphone's
loudness follows the speaker's (correlation 0.8 at the echo's delay; a person's does not)."""


class EchoPath:
    """The coupling of speaker to microphone, from the 10 ms frames where the speaker plays.

    A microphone frame of digital silence (every sample 0) is no evidence either way: a
    real microphone always hears some noise, so such a frame comes from one that is muted,
    or from a stream that is not flowing yet. Counted, a microphone muted through the
    greeting took the speaker for a headset, and the next answer's echo came through raw
    until the speaker was found heard after all (about a second).
    """

    def __init__(self) -> None:
        self.far_pow = 0.0
        """Far-end power, smoothed over about ten frames."""
        self._near_pow = 0.0
        self._db: deque[float] = deque(maxlen=300)
        """Microphone-to-speaker power ratio (dB) of recent frames where the speaker plays."""
        self.coupling = 1.0
        """The speaker in the microphone (power ratio: ``_db``'s median; 0 dB at first)."""
        self.no_echo = False
        """The speaker is not heard in the microphone (a headset)."""
        self.powers: deque[tuple[float, float]] = deque(maxlen=_HEARD_FRAMES + REACH_FRAMES)
        """(far, microphone) power of the latest frames, for :meth:`heard_after_all`."""
        self._check = 0

    def update(self, far_pow: float, near_pow: float, *, digital_silence: bool) -> bool:
        """Follow one frame (far-end and microphone powers). True when a speaker taken as not
        heard (:attr:`no_echo`) turns out to be heard after all: it must be learned cold."""
        self.powers.append((far_pow, near_pow))
        self.far_pow += 0.1 * (far_pow - self.far_pow)
        self._near_pow += 0.1 * (near_pow - self._near_pow)
        if self.far_pow <= ACTIVE_POW or digital_silence:
            return False
        self._db.append(10 * float(np.log10((self._near_pow + 1) / self.far_pow)))
        if len(self._db) < 100:  # 1 s of the speaker playing
            return False
        floor, median = np.percentile(self._db, [20, 50])
        heard = self.no_echo and self.heard_after_all()
        if heard:
            recent = list(self._db)[-_HEARD_FRAMES:]
            self._db = deque(recent, maxlen=300)
            median, self.no_echo = float(np.median(recent)), False
        else:
            self.no_echo = float(floor) < _NO_ECHO_DB
        self.coupling = 10 ** (float(median) / 10)
        return heard

    def heard_after_all(self) -> bool:
        """Taken for a headset, whether the speaker is heard in the microphone after all (a
        headset unplugged, a muted microphone switched on that had some noise of its own).
        Every tenth frame, over half a second and the reach."""
        self._check = (self._check + 1) % 10
        powers = self.powers
        if self._check or len(powers) < (powers.maxlen or 0):
            return False
        recent = list(self._db)[-_HEARD_FRAMES:]
        if float(np.median(recent)) < _HEARD_DB:
            return False
        far, near = np.log10(np.array(powers) + 1.0).T
        n = len(near) - REACH_FRAMES
        with np.errstate(invalid="ignore", divide="ignore"):  # a stream silent all along
            corr = [np.corrcoef(near[k : k + n], far[:n])[0, 1] for k in range(REACH_FRAMES)]
        return bool(np.nan_to_num(corr, nan=-1.0).max() >= _HEARD_CORR)
