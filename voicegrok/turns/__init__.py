"""The life of a turn, in one place: :class:`TurnController` (sans-I/O).

A turn is one question and its answer. It starts when the person has finished speaking
(or typed), possibly *tentatively*, at a pause: its answer is then prepared but held back
until the silence goes on (``TurnConfirmed``) or dropped unheard when the person goes on
speaking (``TurnRetracted``). Once released it is answered and played; it ends completed,
interrupted (a barge-in, a typed question, Esc, ``response.cancel``), retracted or failed.
What the person actually heard of it is what the history keeps.

The controller is fed the frames that come out of a pipeline (:meth:`TurnController.feed`),
where the playback stands (:meth:`~TurnController.queued`, :meth:`~TurnController.played`)
and commands (:meth:`~TurnController.interrupt`, :meth:`~TurnController.truncate`). It
touches no pipeline, device, socket or history: it returns :data:`Decision` s, which its
owner carries out in order. The live loop (``talk``, the terminal UI, ``connect``) and each
server session own one.

Ordering between the two lanes is handled here: ``TurnConfirmed`` and ``TurnRetracted``
travel on the control lane and can overtake the ``TurnStarted`` they refer to, which still
has to cross every stage. A decision about a turn not seen yet is remembered and applied
when the turn arrives.
"""

from __future__ import annotations

from .controller import TurnController
from .model import (
    Decision,
    EditHistory,
    EndTurn,
    Forget,
    KeepHeard,
    PausePlayback,
    Phase,
    Report,
    ResumePlayback,
    Show,
    StopPlayback,
    Turn,
)

__all__ = [
    "Decision",
    "EditHistory",
    "EndTurn",
    "Forget",
    "KeepHeard",
    "PausePlayback",
    "Phase",
    "Report",
    "ResumePlayback",
    "Show",
    "StopPlayback",
    "Turn",
    "TurnController",
]
