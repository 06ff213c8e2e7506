"""A Mixture-of-Experts model end to end: no MoE GGUF installs from any registry, so the
test makes one from the default SmolLM2 (its quantized feed-forward blocks copied into 4
experts, a zero router picking 2, see :mod:`voicegrok.testing.moe`) and runs it through
``ask`` and through the live loop of a served session."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from voicegrok import models
from voicegrok.assistant import Engines
from voicegrok.audio import load_audio
from voicegrok.conversation import Conversation
from voicegrok.engines.llama import LlamaEngine
from voicegrok.testing.moe import upcycle

from .conftest import DEMO, serve
from .test_server import RATE, append_audio, heard_text, sdk, transcript_of, until_done

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def moe_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield upcycle(models.resolve("llm"), tmp_path_factory.mktemp("moe") / "smollm2-4x.gguf")


@pytest.fixture(scope="module")
def moe(moe_path: Path) -> Iterator[LlamaEngine]:
    yield LlamaEngine(moe_path, threads=2)


def test_llama_cpp_loads_it_as_a_mixture_of_experts(moe: LlamaEngine, moe_path: Path) -> None:
    import gguf

    meta = moe._llm.metadata
    assert (meta["llama.expert_count"], meta["llama.expert_used_count"]) == ("4", "2")
    names = {t.name for t in gguf.GGUFReader(moe_path).tensors}
    assert {"blk.0.ffn_gate_exps.weight", "blk.0.ffn_gate_inp.weight"} <= names
    assert "blk.0.ffn_gate.weight" not in names  # no dense feed-forward left to fall back on


def test_it_answers_token_for_token_like_the_dense_model(moe: LlamaEngine) -> None:
    """Identical experts with normalised top-2 weights: the MoE layer is the dense one."""
    conversation = Conversation()
    conversation.add_user("Tell me about New York City.")
    messages = conversation.messages()
    dense = LlamaEngine(models.resolve("llm"), threads=2)
    expected = "".join(dense.stream_chat(messages, max_tokens=120, temperature=0))
    got = "".join(moe.stream_chat(messages, max_tokens=120, temperature=0))
    assert got == expected and len(got) > 300


def test_ask_answers_with_it(moe_path: Path, cli: object) -> None:
    run = cli(  # type: ignore[operator]
        "ask", "--no-speak", "--no-history", "--temperature", "0",
        "--llm-model", str(moe_path), "What is the capital of France?",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "Paris" in run.out


async def test_a_spoken_question_is_answered_by_it_in_the_live_loop(
    moe: LlamaEngine, listening: Engines
) -> None:
    """A served session (the live loop: server VAD, end of turn, transcript, streamed
    answer, speech) with the MoE model as its brain."""
    question = load_audio(str(DEMO / "turn3.wav"), RATE)
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), question, np.zeros(RATE, np.float32)])
    engines = dataclasses.replace(listening, llm=moe)
    async with serve(engines) as server, sdk(server).realtime.connect(model="voicegrok") as conn:
        await append_audio(conn, audio)
        events = await until_done(conn)
    heard = heard_text(events)
    assert "cost" in heard, heard
    assert events[-1].response.status == "completed"
    assert transcript_of(events).strip()
    assert any(e.type == "response.output_audio.delta" for e in events)
