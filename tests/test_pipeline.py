"""The pipeline runner: ordering, pass-through, back-pressure, cancellation, failures."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from voicegrok.frames import Frame, Interrupt, LLMToken, TurnFailed, TurnStarted, UserText
from voicegrok.pipeline import Pipeline


class Upper:
    """Turns every UserText into an upper-case token, passing the text on first."""

    accepts = (UserText,)
    inline = False
    passes_while_busy = ()

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, UserText)
        yield frame
        yield LLMToken(turn_id=frame.turn_id, text=frame.text.upper(), index=0)


class InlineUpper(Upper):
    """The same, run in the pipeline's worker instead of a task per frame."""

    inline = True

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        task = asyncio.current_task()
        assert task is not None and task.get_name().startswith("stage-")
        async for out in super().process(frame):
            yield out


class Slow:
    """Holds each token for ``delay_s`` seconds (an engine that takes time)."""

    accepts = (LLMToken,)
    inline = False
    passes_while_busy = ()

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.started = 0

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        self.started += 1
        await asyncio.sleep(self.delay_s)
        yield frame


class Streamer:
    """Yields ``n`` tokens per text, ``delay_s`` apart, and records whether it was cancelled."""

    accepts = (UserText,)
    inline = False
    passes_while_busy = ()

    def __init__(self, n: int, delay_s: float) -> None:
        self.n, self.delay_s = n, delay_s
        self.cancelled: list[int] = []

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        try:
            for i in range(self.n):
                await asyncio.sleep(self.delay_s)
                yield LLMToken(turn_id=frame.turn_id, text=f"t{i}", index=i)
        except asyncio.CancelledError:
            self.cancelled.append(frame.turn_id)
            raise


class Broken:
    accepts = (UserText,)
    inline = False
    passes_while_busy = ()
    inline = False

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, UserText)
        if frame.text == "boom":
            raise RuntimeError("engine exploded")
        yield frame


async def take(p: Pipeline, n: int, within_s: float = 5.0) -> list[Frame]:
    out: list[Frame] = []

    async def read() -> None:
        async for frame in p.frames():
            out.append(frame)
            if len(out) == n:
                return

    await asyncio.wait_for(read(), within_s)
    return out


@pytest.mark.parametrize("upper", [Upper, InlineUpper])
async def test_frames_come_out_in_order_and_unaccepted_frames_pass_through(
    upper: type[Upper],
) -> None:
    """Each stage handles only what it accepts; everything keeps its order (whether the
    stage runs in a task per frame or inline, in the stage's worker)."""
    async with Pipeline([upper(), Slow(0.001)]) as p:
        await p.push(TurnStarted(turn_id=1, speech_end_s=0.0))
        for word in ("a", "b", "c"):
            await p.push(UserText(turn_id=1, text=word))
        out = await take(p, 7)
    kinds = [(type(f).__name__, getattr(f, "text", "")) for f in out]
    assert kinds == [
        ("TurnStarted", ""),
        ("UserText", "a"),
        ("LLMToken", "A"),
        ("UserText", "b"),
        ("LLMToken", "B"),
        ("UserText", "c"),
        ("LLMToken", "C"),
    ]


async def test_a_slow_stage_pushes_back_on_the_producer() -> None:
    """With bounded queues, push() waits instead of buffering without end."""
    slow = Slow(10.0)
    p = Pipeline([Upper(), slow], queue_size=2)
    p.start()
    pushed = 0

    async def producer() -> None:
        nonlocal pushed
        for i in range(50):
            await p.push(UserText(turn_id=1, text=str(i)))
            pushed += 1

    task = asyncio.create_task(producer())
    await asyncio.sleep(0.2)
    assert not task.done(), "the producer should be blocked by the full queues"
    # 1 in Slow's hands + 2 queued before Slow + 1 in Upper's hands + 2 queued before Upper
    assert pushed <= 8
    task.cancel()
    await p.abort()


async def test_cancelling_a_turn_mid_stream_stops_it_and_leaves_no_task() -> None:
    """cancel_turn stops the running work, drops its queued frames and ends with Interrupt."""
    streamer = Streamer(n=1000, delay_s=0.01)
    async with Pipeline([streamer, Slow(0.0)]) as p:
        await p.push(UserText(turn_id=7, text="go"))
        got: list[Frame] = []
        async for frame in p.frames():
            got.append(frame)
            if len(got) == 3:
                p.cancel_turn(7)
                break
        rest = await take(p, 1)
        assert isinstance(rest[0], Interrupt) and rest[0].turn_id == 7
        await asyncio.sleep(0.05)
        assert streamer.cancelled == [7]
        assert p.running_tasks == 0
        # frames of the cancelled turn pushed later are dropped; the next turn works
        await p.push(UserText(turn_id=7, text="late"))
        streamer.n = 2
        await p.push(UserText(turn_id=8, text="next"))
        nxt = await take(p, 2)
        assert [f.turn_id for f in nxt] == [8, 8]


@pytest.mark.parametrize("inline", [False, True])
async def test_a_failing_stage_ends_its_turn_with_a_message_and_the_pipeline_goes_on(
    inline: bool,
) -> None:
    """An exception becomes TurnFailed for that turn only (inline stages too)."""
    broken = Broken()
    broken.inline = inline
    async with Pipeline([broken, Upper()]) as p:
        await p.push(UserText(turn_id=1, text="boom"))
        await p.push(UserText(turn_id=2, text="fine"))
        out = await take(p, 3)
    assert isinstance(out[0], TurnFailed)
    assert out[0].turn_id == 1 and "engine exploded" in out[0].message
    assert [(type(f).__name__, f.turn_id) for f in out[1:]] == [("UserText", 2), ("LLMToken", 2)]


async def test_close_drains_queued_frames_then_stops() -> None:
    """aclose lets what is queued flow out, then frames() ends."""
    p = Pipeline([Upper()])
    p.start()
    await p.push(UserText(turn_id=1, text="x"))
    await p.aclose()
    out = [f async for f in p.frames()]
    assert [type(f).__name__ for f in out] == ["UserText", "LLMToken"]
    with pytest.raises(RuntimeError):
        await p.push(UserText(turn_id=2, text="y"))


class SlowText:
    """Holds each UserText for ``delay_s`` (like speech waiting for the speaker); tokens
    are declared to go past it while it is busy."""

    accepts = (UserText,)
    inline = False
    passes_while_busy = ()
    passes_while_busy = (LLMToken,)

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        await asyncio.sleep(self.delay_s)
        yield frame


async def test_declared_frames_pass_a_busy_stage_and_the_rest_keep_their_order() -> None:
    """A busy stage does not hold back the frame types it lists in ``passes_while_busy``;
    the frames it processes, and the ones behind them, keep their order."""
    async with Pipeline([SlowText(0.3)]) as p:
        await p.push(UserText(turn_id=1, text="first"))
        await p.push(LLMToken(turn_id=1, text="a", index=0))
        await p.push(TurnStarted(turn_id=1, speech_end_s=0.0))  # not declared: waits
        await p.push(UserText(turn_id=1, text="second"))
        await p.push(LLMToken(turn_id=1, text="b", index=1))
        out = p.frames()
        got = [await asyncio.wait_for(anext(out), 2) for _ in range(5)]
    names = [f.text if isinstance(f, (UserText, LLMToken)) else "started" for f in got]
    assert names == ["a", "b", "first", "started", "second"]


async def test_cancelling_a_turn_drops_its_frames_waiting_for_a_busy_stage() -> None:
    async with Pipeline([SlowText(0.2)]) as p:
        await p.push(UserText(turn_id=1, text="first"))
        await p.push(UserText(turn_id=1, text="queued"))
        await asyncio.sleep(0.05)
        p.cancel_turn(1)
        await p.push(UserText(turn_id=2, text="next"))
        out = p.frames()
        got = [await asyncio.wait_for(anext(out), 2) for _ in range(2)]
    assert isinstance(got[0], Interrupt) and got[0].turn_id == 1
    assert isinstance(got[1], UserText) and got[1].text == "next"


@pytest.mark.parametrize("llm_busy", [True, False])
async def test_speech_is_made_just_in_time_only_while_the_llm_writes(llm_busy: bool) -> None:
    """While the LLM writes, a later clause waits until the speaker would run short (the
    LLM keeps both cores); once it is done, clauses are made ahead at once."""
    import time

    from voicegrok.frames import SpokenClause, TTSAudio
    from voicegrok.stages.tts import TTSStage
    from voicegrok.testing import FakeTTS
    from voicegrok.threads import CoreShare

    cores = CoreShare(2)
    stage = TTSStage(FakeTTS(), lead_s=0.2, cores=cores)
    text = "x" * 100  # 1 s of audio from the fake voice
    made: list[float] = []
    start = time.perf_counter()
    with cores.generating() if llm_busy else contextlib.nullcontext():
        for i in range(2):
            clause = SpokenClause(turn_id=1, index=i, text=text, spoken=text)
            async for frame in stage.process(clause):
                if isinstance(frame, TTSAudio):
                    made.append(time.perf_counter() - start)
    assert len(made) == 2
    if llm_busy:
        assert made[1] - made[0] >= 0.3, "held until the first second has mostly played"
        assert made[1] - made[0] <= 1.0, "but made before it ran out"
    else:
        assert made[1] - made[0] < 0.2


async def test_the_first_clause_of_each_answer_is_synthesized_as_urgent() -> None:
    """The person is waiting for the first sound: only it takes every core."""
    from voicegrok.frames import SpokenClause
    from voicegrok.stages.tts import TTSStage
    from voicegrok.testing import FakeTTS, run_stage

    tts = FakeTTS()
    clauses = [
        SpokenClause(turn_id=turn, index=i, text=text, spoken=text)
        for turn in (1, 2)
        for i, text in enumerate([f"Sure {turn},", "here it is.", "Enjoy."])
    ]
    await run_stage(TTSStage(tts), clauses)
    assert tts.urgent == ["Sure 1,", "Sure 2,"]
    assert len(tts.spoken) == 6


def test_an_engine_with_every_core_pauses_the_llm_between_tokens() -> None:
    import threading
    import time

    from voicegrok.threads import CoreShare

    cores = CoreShare(2)
    waited: list[float] = []

    def llm_token() -> None:
        start = time.perf_counter()
        cores.wait_for_cores()
        waited.append(time.perf_counter() - start)

    with cores.exclusive():
        llm = threading.Thread(target=llm_token)
        llm.start()
        time.sleep(0.2)
        assert llm.is_alive(), "the LLM waits while the first clause is made"
    llm.join(1)
    assert 0.15 <= waited[0] < 1.0, "and goes on as soon as it is done"
    cores.wait_for_cores()  # nobody has every core: no wait

    cores.exclusive_timeout_s = 0.1
    with cores.exclusive():
        start = time.perf_counter()
        cores.wait_for_cores()
        assert time.perf_counter() - start < 0.5, "a stuck engine does not stop the answer"
