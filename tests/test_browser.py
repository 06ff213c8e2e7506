"""The browser client in real headless Chromium: its microphone is a recorded question
(Chromium's fake capture device), the server is ``voicegrok serve`` with the real models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicegrok.assistant import Engines
from voicegrok.audio import load_audio
from voicegrok.config import Settings
from voicegrok.server.app import RealtimeServer, ServerOptions

from .conftest import DEMO, engines_with_vad

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="needs Chromium (installed by .ci/run: apt-get install chromium)",
)


@pytest.fixture
def question(tmp_path: Path) -> Path:
    """The microphone's sound: a spoken question, then silence (Chromium loops the file)."""
    rate = 16000
    speech = load_audio(str(DEMO / "turn3.wav"), rate)
    silence = np.zeros(rate, dtype=np.float32)
    audio = np.concatenate([silence, speech, *[silence] * 40])
    path = tmp_path / "question.wav"
    soundfile.write(str(path), audio, rate, subtype="PCM_16")
    return path


async def test_the_page_hears_a_question_shows_the_answer_and_plays_it(
    engines: Engines, question: Path
) -> None:
    from playwright.async_api import async_playwright

    async with (
        RealtimeServer(engines_with_vad(engines), Settings(), ServerOptions(port=0)) as server,
        async_playwright() as pw,
    ):
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={question}",
                "--autoplay-policy=no-user-gesture-required",
                "--no-sandbox",
            ],
        )
        try:
            page = await browser.new_page(viewport={"width": 390, "height": 800})  # a phone
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            await page.goto(f"http://127.0.0.1:{server.port}/")
            await page.click("#talk")
            you = page.locator(".msg.you").first
            await you.wait_for(timeout=60_000)
            await page.wait_for_function(
                "() => document.querySelector('.msg.you:not(.partial)') !== null", timeout=60_000
            )
            heard = await page.locator(".msg.you:not(.partial)").first.inner_text()
            assert "column" in heard.lower() and "cost" in heard.lower(), heard
            # the answer streams into the page and is played
            await page.wait_for_function("() => window.voicegrok.completed >= 1", timeout=90_000)
            answer = await page.locator(".msg.bot").last.inner_text()
            assert len(answer.split()) >= 3, answer
            await page.wait_for_function(
                "() => window.voicegrok.playedSeconds > 0.5", timeout=60_000
            )
            tps = await page.locator("#tps").inner_text()
            assert float(tps) > 0, tps
            # a typed question in the same conversation
            await page.fill("#text", "What is the capital of France?")
            await page.press("#text", "Enter")
            await page.wait_for_function("() => window.voicegrok.completed >= 2", timeout=90_000)
            last = await page.locator(".msg.bot").last.inner_text()
            assert "Paris" in last, last
            assert not errors, errors
            assert not await page.evaluate("window.voicegrok.errors"), "the server sent errors"
        finally:
            await browser.close()
