"""Commands that answer once and exit: ``ask``, ``reply``, ``transcribe``, ``say``, ``demo``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..adapters.output import AudioOut
from ..adapters.speaker import default_output_device
from ..adapters.terminal import TurnResult, append_metrics, render_turn, report
from ..assistant import Assistant
from ..audio import DEFAULT_OUTPUT_RATE_HZ, WHISPER_RATE_HZ, FloatAudio, load_audio
from ..config import Settings
from ..demo import demo_dir, demo_recordings
from ..errors import UsageError
from ..frames import TTSAudio
from ..userconfig import load_user_config
from .common import check_text, load, mcp_connected
from .history import kept_conversation

__all__ = ["cmd_ask", "cmd_demo", "cmd_reply", "cmd_say", "cmd_transcribe"]


async def _spoken_reply(
    assistant: Assistant, samples: FloatAudio, audio: AudioOut
) -> tuple[TurnResult, str | None]:
    """Answer one recorded question, printed as it streams and spoken to ``audio``; the
    second value is what became of the audio (None when the turn failed)."""
    result = await render_turn(
        assistant.reply(samples, WHISPER_RATE_HZ), sys.stdout, feed=audio.feed, prefix="voicegrok: "
    )
    return result, (await audio.finish() if not result.failed else None)


async def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    if args.text is None and isinstance(args.resume, str):  # ask --resume "question"
        args.text, args.resume = args.resume, "latest"
    text = check_text(args.text or "", "the question")
    config = load_user_config(args.config)  # fails fast, before any model loads
    conversation, recorder = kept_conversation(args, settings, "ask")
    speak = not args.no_speak
    # with nowhere for the speech to go, none is made (AudioOut's note says why)
    heard = args.out is not None or (speak and default_output_device() is not None)
    check_voice = speak and not heard and settings.voice is not None
    engines = load(settings, args, stt=False, tts=heard or check_voice)
    if check_voice:  # the voice asked for is loaded (a broken one says so), then not used
        engines.tts = None
    audio = AudioOut(
        args.out, speak, engines.tts.sample_rate_hz if engines.tts else DEFAULT_OUTPUT_RATE_HZ
    )
    try:
        async with (
            mcp_connected(config, engines),
            Assistant(engines, settings, conversation) as assistant,
        ):
            result = await render_turn(
                assistant.ask(text), sys.stdout, feed=audio.feed, show_user=False
            )
            done = await audio.finish()
        if recorder is not None and result.metrics is not None:
            recorder.metrics(result.metrics.as_dict())
    finally:
        audio.close()
        engines.close()
        if recorder is not None:
            recorder.history.close()
    return report(result, sys.stderr, notes=(done, audio.note), metrics=args.metrics)


async def cmd_reply(args: argparse.Namespace, settings: Settings) -> int:
    samples = load_audio(args.question)  # fails fast, before any model loads
    engines = load(settings, args)
    out: Path = args.out
    audio = AudioOut(out, True, DEFAULT_OUTPUT_RATE_HZ)
    try:
        async with Assistant(engines, settings) as assistant:
            result, done = await _spoken_reply(assistant, samples, audio)
    finally:
        engines.close()
    return report(result, sys.stderr, notes=(done,), metrics=args.metrics)


async def cmd_transcribe(args: argparse.Namespace, settings: Settings) -> int:
    audios = [load_audio(p) for p in args.files]
    engines = load(settings, args, llm=False, tts=False)
    try:
        assert engines.stt is not None
        for path, samples in zip(args.files, audios, strict=True):
            text = await engines.threads["stt"].call(engines.stt.transcribe, samples)
            print(f"{path}: {text}" if len(args.files) > 1 else text, flush=True)
    finally:
        engines.close()
    return 0


async def cmd_say(args: argparse.Namespace, settings: Settings) -> int:
    from ..text import speakable

    text = check_text(args.text, "the text")
    spoken = speakable(text)
    if not spoken:
        raise UsageError("the text has nothing to say (only symbols)")
    engines = load(settings, args, stt=False, llm=False)
    try:
        tts = engines.tts
        assert tts is not None
        audio = AudioOut(args.out, True, tts.sample_rate_hz)
        try:
            async for pcm in engines.threads["tts"].stream(lambda: tts.synthesize(spoken)):
                audio.feed(
                    TTSAudio(turn_id=0, pcm=pcm, sample_rate_hz=tts.sample_rate_hz, clause_index=0)
                )
            done = await audio.finish()
        finally:
            audio.close()
    finally:
        engines.close()
    for line in (done, audio.note):
        if line:
            print(line, file=sys.stderr)
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    recordings = demo_recordings(args.questions or demo_dir())
    out_dir: Path = args.out_dir
    speaker = default_output_device() is not None and not args.no_speaker
    engines = load(settings, args)
    where = "the speaker" if speaker else f"WAV files in {out_dir}/"
    print(f"voicegrok demo: {len(recordings)} spoken questions, replies to {where}\n", flush=True)
    failures = 0
    try:
        async with Assistant(engines, settings) as assistant:
            for i, (path, samples) in enumerate(recordings, start=1):
                print(f"── turn {i} ({path.name})", flush=True)
                wav = None if speaker else out_dir / f"reply{i}.wav"
                rate = engines.tts.sample_rate_hz if engines.tts else DEFAULT_OUTPUT_RATE_HZ
                audio = AudioOut(wav, True, rate)
                try:
                    result, done = await _spoken_reply(assistant, samples, audio)
                finally:
                    audio.close()
                if result.failed:
                    failures += 1
                    print(f"(turn failed: {result.failed})", flush=True)
                if result.metrics is not None:
                    print(f"[{result.metrics.summary()}]", flush=True)
                    append_metrics(args.metrics, result.metrics)
                if done:
                    print(done, flush=True)
                print(flush=True)
    finally:
        engines.close()
    return 1 if failures else 0
