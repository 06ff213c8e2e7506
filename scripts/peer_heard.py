"""Heard latency of the pipecat peer and of ``voicegrok talk``, taking turns on one rig.

Both are measured as ``voicegrok bench latency`` measures talk: the demo questions are
written into a private PulseAudio's pipe-source microphone at real-time pace and the
speaker's monitor is recorded; the figure runs from the last voiced sample written to the
first reply sound recorded. The peer answers one question first, unmeasured (its first
answer took 6 s here: it loads parts of itself then; talk warms up before it listens).
Each round runs the peer (``run.sh`` of
``../shared/peers/pipecat_local``, installed as its README says) and then talk, or the
other way round, so that both see the same machine in the same minutes.

    python scripts/peer_heard.py --peer ../shared/peers/pipecat_local --rounds 3 \
        --llm-model smollm2-135m --out heard.json

With ``--no-peer`` it is an A/B of talk from two source trees, on the same rig:

    python scripts/peer_heard.py --no-peer --talk old=/tmp/wt new=. --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from voicegrok.bench.commands import Voicegrok
from voicegrok.bench.heard import LEAD_IN_S, LEVEL, SETTLE_S, first_above, last_above, run_heard
from voicegrok.bench.rig import MIC_RATE_HZ, VirtualAudio, virtual_audio
from voicegrok.bench.stats import percentiles
from voicegrok.config import Settings
from voicegrok.demo import demo_dir, demo_recordings

READY = "pipecat bot ready"
"""What the peer's bot logs once it listens."""


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the peer ended before it was ready (see {path})")
        if path.exists() and text in path.read_text(errors="replace"):
            return
        time.sleep(0.2)
    raise SystemExit(f"the peer was not ready after {timeout_s:g} s (see {path})")


def _answered(audio: VirtualAudio, question: np.ndarray, timeout_s: float = 120) -> float | None:
    """Say ``question``, wait for an answer to start and then end (quiet for SETTLE_S);
    milliseconds from the end of the words to the first reply sound (None: no answer)."""
    mic, rec = audio.microphone(), audio.record()
    try:
        lead_in = np.zeros(int(LEAD_IN_S * MIC_RATE_HZ), dtype=np.float32)
        end_s = mic.say(np.concatenate([lead_in, question]), len(lead_in) + last_above(question))
        deadline = time.monotonic() + timeout_s
        start = rec.position_of(end_s)
        while first_above(rec.audio(start)) is None:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.1)
        since = time.monotonic()
        while time.monotonic() - since < SETTLE_S and time.monotonic() < deadline:
            now = rec.now_s()
            if rec.loudness(now - 0.1, now) > LEVEL / 10:  # as wait_quiet hears it
                since = time.monotonic()
            time.sleep(0.05)
        sound = first_above(rec.audio(start))
        return None if sound is None else round(sound / rec.RATE * 1000, 1)
    finally:
        mic.close()
        rec.stop()
        audio.recordings.remove(rec)


def peer_round(
    audio: VirtualAudio,
    peer: Path,
    venv: Path,
    folder: Path,
    questions: list[Any],
    keep_log: Path | None = None,
) -> list[float | None]:
    log = folder / "peer.log"
    env = dict(audio.env, PEER_VENV=str(venv), PEER_LOG_FILE=str(log))
    proc = subprocess.Popen(
        [str(peer / "run.sh")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        _wait_for(log, READY, proc, timeout_s=300)
        time.sleep(SETTLE_S)
        _answered(audio, questions[0][1])  # its first answer loads what it loads lazily
        answers = [_answered(audio, q) for _, q in questions]
        if keep_log is not None:
            keep_log.write_text(log.read_text(errors="replace"))
        return answers
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", type=Path, default=Path("../shared/peers/pipecat_local"))
    p.add_argument(
        "--no-peer", action="store_true", help="only talk, from each source tree (an A/B)"
    )
    p.add_argument(
        "--peer-venv",
        type=Path,
        default=Path.home() / ".cache" / "voicegrok-peers" / "pipecat-venv",
    )
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--questions", type=int, nargs="+", default=[2, 3, 4])
    p.add_argument("--llm-model", default="smollm2-135m")
    p.add_argument(
        "--talk",
        nargs="+",
        default=["talk"],
        metavar="NAME[=SOURCE]",
        help="talk to measure, each from its own source tree (PYTHONPATH), e.g. old=/tmp/wt",
    )
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    recordings = demo_recordings(demo_dir())
    questions = [(f"turn{i}.wav", recordings[i - 1][1]) for i in args.questions]
    settings = Settings(llm_model=args.llm_model)
    talks = dict(t.split("=", 1) if "=" in t else (t, "") for t in args.talk)
    heard: dict[str, list[dict[str, Any]]] = {t: [] for t in talks}
    if not args.no_peer:
        heard = {"pipecat": [], **heard}
    with (
        tempfile.TemporaryDirectory(prefix="peer-heard-") as tmp,
        virtual_audio(Path(tmp) / "pulse") as audio,
    ):
        for r in range(1, args.rounds + 1):
            for who in list(heard) if r % 2 else list(heard)[::-1]:
                folder = Path(tmp) / f"{who}-{r}"
                folder.mkdir()
                if who == "pipecat":
                    keep = args.out.with_suffix(f".pipecat{r}.log") if args.out else None
                    ms = peer_round(
                        audio, args.peer.resolve(), args.peer_venv, folder, questions, keep
                    )
                    rows = [
                        {"question": q, "heard_ms": m}
                        for (q, _), m in zip(questions, ms, strict=True)
                    ]
                else:
                    env = dict(audio.env, **({"PYTHONPATH": talks[who]} if talks[who] else {}))
                    vg = Voicegrok(sys.executable, settings, env, folder)
                    report = run_heard(
                        vg, audio, 1, lambda _m: None, commands=("talk",), questions=questions
                    )
                    rows = [
                        {"question": t["question"], "heard_ms": t["heard_ms"]}
                        for t in report["turns"]
                    ]
                for row in rows:
                    heard[who].append({"round": r, **row})
                    print(who, r, row["question"], row["heard_ms"], flush=True)
    result = {
        "what": "last voiced sample written to the microphone -> first reply sound recorded "
        "(virtual PulseAudio devices, real-time pace), pipecat and voicegrok talk taking turns",
        "talk_sources": talks,
        "questions": [q for q, _ in questions],
        "rounds": args.rounds,
        **{
            f"{who}_ms": percentiles([t["heard_ms"] for t in rows if t["heard_ms"] is not None])
            for who, rows in heard.items()
        },
        "not_heard": {who: sum(t["heard_ms"] is None for t in rows) for who, rows in heard.items()},
        "turns": heard,
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
