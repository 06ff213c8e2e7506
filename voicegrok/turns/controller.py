"""The turn controller: see :mod:`voicegrok.turns`."""

from __future__ import annotations

from collections import OrderedDict

from ..frames import (
    Frame,
    Heard,
    Interrupt,
    LLMToken,
    SpeechOnset,
    SpeechStarted,
    SpokenClause,
    TurnConfirmed,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from ..text import is_aside
from .model import (
    Decision,
    EditHistory,
    EndTurn,
    Forget,
    KeepHeard,
    PausedAnswer,
    PausePlayback,
    Phase,
    Report,
    ResumePlayback,
    Show,
    StopPlayback,
    Turn,
)

__all__ = ["TurnController"]

_KEEP_TURNS = 16
"""Ended turns remembered (their late frames are recognised as stale)."""
_MAX_AHEAD = 4096
"""Frames kept for a turn that has not started yet (a whole answer's tokens and audio)."""
_STOPPED = (TurnRetracted, Interrupt)
"""What in ``_early`` means the turn was stopped before its ``TurnStarted`` came."""


# ---------------------------------------------------------------------------- controller


class TurnController:
    """Owns every turn of one conversation. Not thread-safe: one event loop drives it.

    ``tracks_playback``: the owner reports playback positions (a local speaker); when
    False (a server, whose client plays the audio) an answer counts as heard in full
    once made, until the client says otherwise (:meth:`truncate`).
    ``interrupt_on_speech``: the person speaking during an answer interrupts it.
    ``confirm_interruptions``: ... only once their words are known (a local speaker): the
    answer pauses at once; an aside (:func:`~voicegrok.text.is_aside`: a "mm-hmm", a
    cough, its own words heard back) resumes it where it paused and is forgotten, anything
    else interrupts it (a partial transcript with real words does, before the speech ends).
    """

    def __init__(
        self,
        *,
        tracks_playback: bool = True,
        interrupt_on_speech: bool = True,
        barge_in_reason: str = "interrupted",
        confirm_interruptions: bool = False,
    ) -> None:
        self.tracks_playback = tracks_playback
        self.interrupt_on_speech = interrupt_on_speech
        self.confirm_interruptions = confirm_interruptions and tracks_playback
        self._paused: PausedAnswer | None = None
        self._onset_paused: int | None = None
        """The answer paused by voiced windows that have not started speech (yet)."""
        self._aside: tuple[int, Turn] | None = None
        """The last speech taken for an aside, and the answer it let play on: if the
        person goes on speaking after it, the answer pauses again."""
        self.barge_in_reason = barge_in_reason
        """What the ``Interrupt`` of a turn spoken over says."""
        self._turns: OrderedDict[int, Turn] = OrderedDict()
        self._early: dict[int, type[Frame]] = {}
        """Turn id -> TurnConfirmed, TurnRetracted or Interrupt (a cancelled response) that
        came before its TurnStarted."""
        self._ahead: dict[int, list[Frame]] = {}
        """Frames of turns not started yet: the LLM's tokens pass a TTS stage busy with an
        earlier answer, so they can come out before their own ``TurnStarted``."""
        self._newest = 0
        """The newest turn id started (turn ids only grow)."""
        self.current: Turn | None = None
        """The newest released turn (being answered, or its answer playing)."""
        self.played_pos = 0.0
        """Playback position (seconds of the output stream) reached so far."""
        self.interruptions = 0
        self.turns_done = 0

    # ------------------------------------------------------------------ state

    @property
    def playing(self) -> bool:
        """The current turn's audio has not all been played."""
        turn = self.current
        return self.tracks_playback and turn is not None and turn.audio_end > self.played_pos

    @property
    def answering(self) -> bool:
        """A turn is being answered, or its answer is still playing."""
        turn = self.current
        return turn is not None and (turn.phase is Phase.ANSWERING or self.playing)

    # ------------------------------------------------------------------ frames

    def feed(self, frame: Frame) -> list[Decision]:
        """A frame out of the pipeline: what to do about it."""
        if type(frame) is LLMToken:  # the common case, a hundred a second: straight through
            turn = self._turns.get(frame.turn_id)
            if turn is not None and turn.phase is Phase.ANSWERING:
                turn.answer.append(frame.text)
                return [Show(frame)]
        if isinstance(frame, SpeechOnset):
            return self._onset(frame.voiced)
        if self._paused is not None:
            decided = self._while_paused(self._paused, frame)
            if decided is not None:
                return decided
        if isinstance(frame, Heard):
            return self._heard(frame)
        if isinstance(frame, SpeechStarted):
            out: list[Decision] = [Show(frame)]
            current, self._onset_paused = self.current, None  # (its pause goes on, if any)
            if self.interrupt_on_speech and current is not None:
                if self.confirm_interruptions and self._interruptible(current):
                    self._paused = PausedAnswer(current, frame.turn_id)
                    out.append(PausePlayback(current.turn_id))
                else:
                    out += self._interrupt(current, self.barge_in_reason)
            return out
        if isinstance(frame, TurnConfirmed):
            return self._confirmed(frame)
        if isinstance(frame, TurnRetracted):
            return self._retracted(frame)
        if isinstance(frame, UserText) and not frame.final:
            return [Show(frame)]  # a partial transcript: shown as it is
        if isinstance(frame, TurnStarted):
            return self._started(frame)
        turn = self._turns.get(frame.turn_id)
        if turn is None:
            if isinstance(frame, TurnFailed) and frame.turn_id == 0:
                return [Show(frame)]  # the listener's own trouble: it goes on
            if frame.turn_id > self._newest and self._early.get(frame.turn_id) not in _STOPPED:
                ahead = self._ahead.setdefault(frame.turn_id, [])
                if len(ahead) < _MAX_AHEAD:
                    ahead.append(frame)  # given to the turn when it starts
                return []
            return []  # a stale frame of a turn long gone
        if turn.phase is Phase.HELD:
            turn.held.append(frame)
            if isinstance(frame, TurnFailed):  # nothing to hold back: say it now
                return self._release(turn)
            return []
        return self._released_frame(turn, frame)

    def _onset(self, voiced: bool) -> list[Decision]:
        """A voiced window over an answer pauses it at once (a 32 ms window before speech
        starts); if no speech starts, it plays on."""
        current, paused = self.current, self._onset_paused
        if not voiced:
            self._onset_paused = None
            if paused is None or self._paused is not None or current is None:
                return []
            return [ResumePlayback(paused)] if current.turn_id == paused else []
        if (
            self.confirm_interruptions
            and self.interrupt_on_speech
            and self._paused is None
            and paused is None
            and current is not None
            and self.playing
            and self._interruptible(current)
        ):
            self._onset_paused = current.turn_id
            return [PausePlayback(current.turn_id)]
        return []

    def _while_paused(self, paused: PausedAnswer, frame: Frame) -> list[Decision] | None:
        """A frame while an answer is paused by speech (None: handled as usual). The
        speech's words come as ``Heard`` on the control lane: its ``UserText`` may wait
        behind an LLM still writing the paused answer."""
        if isinstance(frame, SpeechStarted):  # speech again, after words that decided nothing
            paused.speech, paused.started = frame.turn_id, None
            return [Show(frame)]
        if frame.turn_id < paused.speech:
            return None  # the paused answer's own frames, and older ones
        if isinstance(frame, TurnStarted) and frame.source == "speech":
            paused.started = frame
            return []
        if isinstance(frame, TurnRetracted):  # the person went on: a newer id follows
            paused.started = None
            return self._retracted(frame)
        if not isinstance(frame, Heard):
            return None
        if is_aside(frame.text, "".join(paused.turn.answer), frame.voiced_ms):
            return self._resume(paused, frame.turn_id) if frame.final else []
        self._paused = None  # meant: the answer stops, the speech becomes the next turn
        out = self._interrupt(paused.turn, self.barge_in_reason)
        if out:  # shown before the words that stopped it
            out.append(Show(Interrupt(turn_id=paused.turn.turn_id, reason=self.barge_in_reason)))
            paused.turn.interrupt_shown = True
        if paused.started is not None:
            out += self._started(paused.started)
        return out

    def _heard(self, frame: Heard) -> list[Decision]:
        """Words of speech with no answer paused. They decide only when the speech went on,
        under a newer id, after words taken for an aside that started no turn (so no
        retraction told of it; seen on open speakers: "Wait" made out as "."): an aside
        again lets the answer play on, anything else stops it."""
        current = self.current
        if (
            self._paused is not None  # words of an older speech than the one that paused it
            or not self.confirm_interruptions
            or not self.interrupt_on_speech
            or current is None
            or frame.turn_id <= current.turn_id
            or not self._interruptible(current)
        ):
            return []
        if is_aside(frame.text, "".join(current.answer), frame.voiced_ms):
            if not frame.final:
                return []
            out = self._resume(PausedAnswer(current, frame.turn_id), frame.turn_id)
            return [d for d in out if not isinstance(d, ResumePlayback)]  # never paused
        self._paused = PausedAnswer(current, frame.turn_id)
        return self._while_paused(self._paused, frame) or []

    def _resume(self, paused: PausedAnswer, speech: int) -> list[Decision]:
        """The speech was not meant for the answer: it plays on, and the speech's turn
        never was."""
        self._paused = None
        self._early[speech] = TurnRetracted
        self._aside = (speech, paused.turn)
        return [
            EndTurn(speech, ""),
            EditHistory(speech, Forget()),
            ResumePlayback(paused.turn.turn_id),
        ]

    def _started(self, frame: TurnStarted) -> list[Decision]:
        out = self._start(frame)
        ahead = self._ahead.pop(frame.turn_id, [])
        # TurnStarted frames come in order: an older turn that has not started never will
        # (it was cancelled, and the runner dropped it), so what waits for it goes
        self._ahead = {k: v for k, v in self._ahead.items() if k > frame.turn_id}
        self._early = {k: v for k, v in self._early.items() if k > frame.turn_id}
        for early_frame in ahead:
            out += self.feed(early_frame)
        return out

    def _start(self, frame: TurnStarted) -> list[Decision]:
        early = self._early.pop(frame.turn_id, None)
        if frame.turn_id < self._newest:
            return []  # older than a turn already started: stale (turns start in order)
        self._newest = frame.turn_id
        if early in _STOPPED or frame.turn_id in self._turns:
            return []  # withdrawn or stopped already (its work was stopped then), or a duplicate
        turn = Turn(
            frame.turn_id,
            Phase.HELD if frame.tentative else Phase.ANSWERING,
            source=frame.source,
            speech_end_s=frame.speech_end_s,
        )
        self._remember(turn)
        if turn.phase is Phase.HELD and early is not TurnConfirmed:
            turn.held.append(frame)
            return []
        turn.phase = Phase.ANSWERING
        turn.released_s = frame.at_s
        return self._begin(turn, frame)

    def _begin(self, turn: Turn, frame: TurnStarted) -> list[Decision]:
        previous = self.current
        out: list[Decision] = []
        if (
            self.interrupt_on_speech
            and frame.source == "speech"
            and previous is not None
            and previous is not turn
            and self._interruptible(previous)
        ):  # a spoken turn whose speech stopped nothing (missed): its answer goes first
            out += self._interrupt(previous, self.barge_in_reason)
        out += self._report_previous(final=True)
        self.current = turn
        out.append(Show(frame))
        return out

    def _confirmed(self, frame: TurnConfirmed) -> list[Decision]:
        turn = self._turns.get(frame.turn_id)
        if turn is None:
            if self._early.get(frame.turn_id) not in _STOPPED:
                self._early[frame.turn_id] = TurnConfirmed
            return []
        if turn.phase is not Phase.HELD:
            return []  # released already
        turn.released_s = frame.at_s
        return self._release(turn)

    def _release(self, turn: Turn) -> list[Decision]:
        held, turn.held = turn.held, []
        turn.phase = Phase.ANSWERING
        out: list[Decision] = []
        for frame in held:
            if isinstance(frame, TurnStarted):
                out += self._begin(turn, frame)
            else:
                out += self._released_frame(turn, frame)
        return out

    def _retracted(self, frame: TurnRetracted) -> list[Decision]:
        if self._aside is not None and self._aside[0] == frame.turn_id:
            # words after the aside: the same speech goes on (under a newer turn id)
            answer, self._aside = self._aside[1], None
            if self._paused is None and self._interruptible(answer):
                self._paused = PausedAnswer(answer, frame.turn_id + 1)
                return [PausePlayback(answer.turn_id)]
        turn = self._turns.get(frame.turn_id)
        stop: list[Decision] = [EndTurn(frame.turn_id, ""), EditHistory(frame.turn_id, Forget())]
        if turn is None:  # overtook its TurnStarted: stop its work now, drop it when it comes
            self._early[frame.turn_id] = TurnRetracted
            return stop
        if turn.ended:
            return []
        was_held = turn.phase is Phase.HELD
        turn.phase, turn.held = Phase.RETRACTED, []
        if was_held:
            return stop  # never seen nor heard: nothing to show
        out: list[Decision] = []
        if self.current is turn:
            self.current = None
            out.append(StopPlayback(turn.turn_id))
            turn.audio_end = min(turn.audio_end, self.played_pos)
        return [*out, *stop, Show(frame)]

    def _released_frame(self, turn: Turn, frame: Frame) -> list[Decision]:
        if turn.ended and not isinstance(frame, (Interrupt, TurnFailed)):
            return []  # stale: made before the turn's work stopped
        if isinstance(frame, LLMToken):
            turn.answer.append(frame.text)
        elif isinstance(frame, SpokenClause):
            turn.clause_text[frame.index] = frame.text
        elif isinstance(frame, TurnMetrics):
            turn.metrics = frame
            turn.phase = Phase.ANSWERED
            self.turns_done += 1
            if self.tracks_playback:  # reported by played(): the owner may not have queued
                return [Show(frame)]  # this batch's audio yet (a held turn comes all at once)
            return [Show(frame), *self._report_if_heard(turn)]
        elif isinstance(frame, TurnFailed):
            if turn.phase is not Phase.INTERRUPTED:
                turn.phase = Phase.FAILED
        elif isinstance(frame, Interrupt):
            if turn.phase is Phase.ANSWERING:  # cancelled elsewhere (the runner, a reader)
                turn.phase = Phase.INTERRUPTED
            if turn.interrupt_shown:
                return []
        return [Show(frame)]

    # ------------------------------------------------------------------ playback

    def queued(
        self, turn_id: int, clause_index: int, start: float, end: float, *, first_play_s: float
    ) -> None:
        """The owner handed audio of ``clause_index`` to the device: it fills the output
        stream from ``start`` to ``end`` (seconds; the same clock as :meth:`played`).
        ``first_play_s``: when its first sample will be heard (``perf_counter()``)."""
        turn = self._turns.get(turn_id)
        if turn is None or turn.ended:
            return
        if turn.audio_start is None:
            turn.audio_start = start
            turn.first_play_s = first_play_s
        turn.clause_end[clause_index] = end
        turn.audio_end = max(turn.audio_end, end)

    def played(self, position: float) -> list[Decision]:
        """Playback has reached ``position``: a finished answer played out is reported."""
        self.played_pos = max(self.played_pos, position)
        return self._report_previous(final=False)

    # ------------------------------------------------------------------ commands

    def interrupt(self, reason: str = "interrupted", turn_id: int | None = None) -> list[Decision]:
        """Stop the answer in progress (Esc, a typed question, ``response.cancel``).
        Nothing to do (an empty list) when no answer is being made or played.

        ``turn_id``: stop that turn, even one whose first frame has not come out yet (a
        response cancelled right after it was asked for)."""
        if turn_id is not None and turn_id not in self._turns:
            if turn_id <= self._newest or turn_id in self._early:
                return []  # long gone, or withdrawn already
            self._early[turn_id] = Interrupt  # its frames are dropped when they come
            self.interruptions += 1
            return [
                StopPlayback(turn_id),
                EndTurn(turn_id, reason),
                EditHistory(turn_id, KeepHeard("", None)),
            ]
        turn = self.current if turn_id is None else self._turns[turn_id]
        return [] if turn is None else self._interrupt(turn, reason)

    def truncate(self, turn_id: int, heard_s: float) -> list[Decision]:
        """The client played ``heard_s`` seconds of the turn's answer audio (the Realtime
        API's ``conversation.item.truncate``): stop it if it is still going, and keep in
        the history what those seconds held."""
        turn = self._turns.get(turn_id)
        if turn is None:
            return []
        out = self._interrupt(turn, "client_cancelled") if turn is self.current else []
        start = turn.audio_start or 0.0
        heard = turn.heard(start + heard_s)
        out = [d for d in out if not isinstance(d, EditHistory)]
        out.append(EditHistory(turn_id, KeepHeard(heard.text, heard_s)))
        return out

    def flush(self) -> list[Decision]:
        """The session ends: the current turn's metrics, if not reported yet."""
        return self._report_previous(final=True)

    def forget_all(self) -> list[Decision]:
        """A new conversation: stop any answer; earlier turns are no longer anyone's."""
        out = self.interrupt()
        self.current = None
        return out

    def _interruptible(self, turn: Turn) -> bool:
        """Its answer is being made, or not all heard yet."""
        if turn.ended:
            return False
        playing = self.tracks_playback and turn.audio_end > self.played_pos
        return turn.phase is Phase.ANSWERING or playing

    def _interrupt(self, turn: Turn, reason: str) -> list[Decision]:
        if self._paused is not None and self._paused.turn is turn:
            self._paused = None  # stopped here: the speech is a turn as any other
        if not self._interruptible(turn):
            return []  # its answer is complete and heard: nothing left to interrupt
        turn.phase = Phase.INTERRUPTED
        self.interruptions += 1
        heard = (
            turn.heard(self.played_pos)
            if self.tracks_playback
            else KeepHeard("".join(turn.answer).strip(), None)
        )
        turn.audio_end = min(turn.audio_end, self.played_pos)
        out: list[Decision] = [
            StopPlayback(turn.turn_id),
            EndTurn(turn.turn_id, reason),
            EditHistory(turn.turn_id, heard),
        ]
        turn.reported = True
        out.append(Report(turn.turn_id, turn.row(interrupted=True)))
        return out

    # ------------------------------------------------------------------ metrics

    def _report_if_heard(self, turn: Turn) -> list[Decision]:
        if turn.reported or turn.metrics is None:
            return []
        if self.tracks_playback and turn.audio_end > self.played_pos:
            return []  # written once it has been played out
        turn.reported = True
        return [Report(turn.turn_id, turn.row(interrupted=False))]

    def _report_previous(self, *, final: bool) -> list[Decision]:
        turn = self.current
        if turn is None or turn.reported or turn.metrics is None:
            return []
        if final:
            turn.reported = True
            return [Report(turn.turn_id, turn.row(interrupted=False))]
        return self._report_if_heard(turn)

    def _remember(self, turn: Turn) -> None:
        self._turns[turn.turn_id] = turn
        while len(self._turns) > _KEEP_TURNS:
            old_id, old = next(iter(self._turns.items()))
            if old is self.current:
                break
            del self._turns[old_id]
