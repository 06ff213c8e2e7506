"""What runs at the end of a spoken turn, replayed with the real engines, in a chosen order.

In ``talk``, the work that decides when and what to answer comes at the end of speech, all
at once, on 2 cores: the eager transcription (whisper), Smart Turn, the LLM's prompt (the
last words and the chat template's end: about 12 tokens), the words reader (SmolLM2) and
the first decoding steps. On the rig their timings swing by 100 ms from run to run, too
much to compare two orders of the same work; here they run alone, on the demo questions,
with the times of each taken from the start of the eager transcription:

- ``together`` (talk's order): Smart Turn beside the transcription; at the pause (130 ms
  in), the LLM's prompt beside the words reader;
- ``after``: Smart Turn once the transcription is made, the reader after Smart Turn.

    PYTHONPATH=. python scripts/pause_replay.py --order together --rounds 6

Give another source tree in PYTHONPATH to compare builds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import numpy as np

from voicegrok.config import Settings
from voicegrok.conversation import Conversation
from voicegrok.demo import demo_dir, demo_recordings
from voicegrok.endpointing import EndpointConfig
from voicegrok.loading import Engines, load_engines

PAUSE_MS = 130
"""The pause comes this long after the eager transcription starts (on the rig: 120-140)."""


def replay(e: Engines, audio: np.ndarray, text: str, order: str) -> dict[str, float]:
    stt, llm, turn, reads = e.stt, e.llm, e.turn, e.words
    assert stt and llm and turn and reads
    tail = np.zeros(EndpointConfig().tail_ms * stt.sample_rate_hz // 1000, dtype=np.float32)
    system = Settings().system_prompt
    heard_so_far = Conversation(system)
    heard_so_far.add_user(" ".join(text.split()[:-2]))  # the partial transcripts' words
    llm.warm_up(heard_so_far.messages())
    final = Conversation(system)
    final.add_user(text)
    t0 = time.perf_counter()
    times: dict[str, float] = {}
    made, sounded = threading.Event(), threading.Event()

    def at(what: str) -> None:
        times[what] = round(1000 * (time.perf_counter() - t0), 1)

    def smart_turn() -> None:
        if order == "after":
            made.wait()
        turn.probability(np.concatenate([audio, tail]))  # as the loop pads it at a pause
        at("smart_turn")
        sounded.set()

    def reader() -> None:
        if order == "after":
            sounded.wait()
        reads.probability(text)
        at("reader")

    side = threading.Thread(target=smart_turn)
    side.start()
    stt.transcribe(audio)
    at("transcript")
    made.set()
    time.sleep(max(0.0, PAUSE_MS / 1000 - (time.perf_counter() - t0)))
    words = threading.Thread(target=reader)
    words.start()
    for n, _ in enumerate(llm.stream_chat(final.messages(), max_tokens=10, temperature=0.0)):
        if n == 0:
            at("first_token")
    at("ten_tokens")  # (or the answer's end, if sooner)
    side.join()
    words.join()
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--order", choices=["together", "after"], default="together")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--llm-model", default="smollm2-135m")
    args = p.parse_args()
    e = load_engines(Settings(llm_model=args.llm_model), vad=True)
    assert e.stt is not None
    cases = [(a, e.stt.transcribe(a)) for _, a in demo_recordings(demo_dir())[1:]]
    rows = []
    for _ in range(args.rounds):
        for audio, text in cases:
            rows.append(replay(e, audio, text, args.order))
            time.sleep(0.2)
    result = {
        "order": args.order,
        "what": "ms from the start of the eager transcription (the pause at 130)",
        "p50": {k: statistics.median(r[k] for r in rows) for k in rows[0]},
        "max": {k: max(r[k] for r in rows) for k in rows[0]},
        "n": len(rows),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
