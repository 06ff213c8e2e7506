"""Make the README's pictures from real sessions: assets/tui.svg, assets/web.png and
assets/web-phone.png.

Rerun it whenever the default models change (or the UI or the page do), and commit the new
pictures with that change:

    .venv/bin/python scripts/screenshots.py [--llm-model PATH|NAME] [--out assets]

Each picture is a real conversation on this build: the demo's first two questions, typed,
answered by the real models (the defaults, or --llm-model). The terminal UI runs headless
under Textual's test driver at 140x40; the browser client is ``voicegrok serve`` in a
subprocess (a fresh one per picture), driven by headless Chromium (Playwright) at a desktop
and a phone size. No microphone or speaker is needed: without them the terminal UI is a typed
chat (with them it also listens and speaks: keep the room quiet). It takes a few minutes on
2 cores; run it on an otherwise idle machine, since the pictures show the speeds measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from voicegrok.config import Settings
from voicegrok.models import DEFAULTS, resolve

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent

QUESTIONS = [
    "I'd like to visit New York City for two days, with things that are not typically "
    "touristy: can you make an itinerary?",
    "Put it in a table.",
]
TUI_SIZE = (140, 40)  # columns, rows
VIEWPORTS = {  # file name: (width, height) in CSS pixels
    "web.png": (1100, 700),
    "web-phone.png": (390, 780),
}
ANSWER_TIMEOUT_S = 300  # one answer, at most (400 tokens at a slow 2 tokens/s)
LOAD_TIMEOUT_S = 300  # the models, at most


async def wait_until(condition: Callable[[], bool], what: str, timeout_s: float) -> None:
    """Poll ``condition()`` every 0.1 s until it is true; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


def show(what: str, answer: str) -> None:
    print(f"  {what}:\n    " + answer.strip().replace("\n", "\n    "))


# ---------------------------------------------------------------------- terminal UI


async def terminal_ui(llm_model: str | None, out: Path) -> Path:
    """The real app with the real models (LocalBackend), headless, saved as SVG."""
    from textual.widgets import DataTable, Input

    from voicegrok.ui import LocalBackend, VoicegrokApp
    from voicegrok.userconfig import UserConfig

    app = VoicegrokApp(
        Settings(llm_model=llm_model),
        UserConfig(),  # not this machine's saved settings: the defaults
        backend=LocalBackend(),
    )
    async with app.run_test(size=TUI_SIZE) as pilot:
        await wait_until(lambda: app.session is not None, "the models to load", LOAD_TIMEOUT_S)
        turns = app.query_one("#turns", DataTable)

        def answered(n: int) -> Callable[[], bool]:
            """Turn ``n`` is done: its row is in the recent turns, its answer all drawn."""
            return lambda: turns.row_count >= n and app.settled

        for n, question in enumerate(QUESTIONS, start=1):
            app.query_one("#prompt", Input).value = question
            await pilot.press("enter")
            await wait_until(answered(n), f"answer {n} in the terminal UI", ANSWER_TIMEOUT_S)
            show(f"tui answer {n}", app.conversation.turns[-1]["content"])
        await pilot.pause(0.5)  # the panel's figures are redrawn at its 10 Hz tick
        path = app.save_screenshot("tui.svg", str(out))
        await pilot.press("ctrl+q")
    return Path(path)


# ---------------------------------------------------------------------- browser client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_server(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"voicegrok serve exited:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"voicegrok serve did not answer at {url}") from None
            time.sleep(0.5)


def converse(page: Page, url: str, name: str) -> None:
    """Type each question in the page and wait until its answer is written and heard to
    the end (a question typed while it speaks would keep only what was heard)."""
    page.goto(url)
    for n, question in enumerate(QUESTIONS, start=1):
        page.fill("#text", question)
        page.press("#text", "Enter")
        page.wait_for_function(
            f"() => window.voicegrok.completed >= {n} && !window.voicegrok.playing.length",
            timeout=ANSWER_TIMEOUT_S * 1000,
        )
        show(f"{name} answer {n}", page.locator(".msg.bot").last.inner_text())
    if errors := page.evaluate("window.voicegrok.errors"):
        raise RuntimeError(f"the server sent errors: {errors}")
    # scrolled up to the last question, as one would to read its answer from the start
    page.locator(".msg.you").last.evaluate("q => q.scrollIntoView({block: 'start'})")


@contextmanager
def serve(llm_model: str | None) -> Iterator[str]:
    """A fresh ``voicegrok serve`` in a subprocess (its models loaded anew): its page's URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    command = [sys.executable, "-m", "voicegrok", "serve", "--port", str(port)]
    if llm_model:
        command += ["--llm-model", llm_model]
    with tempfile.NamedTemporaryFile(prefix="voicegrok-serve-", suffix=".log") as log_file:
        log = Path(log_file.name)
        server = subprocess.Popen(command, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_for_server(server, url, log)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def browser_client(llm_model: str | None, out: Path) -> list[Path]:
    """The page in headless Chromium at each size, each the first session of a fresh server
    (as the terminal UI's is), so that no picture depends on another one's conversation."""
    from playwright.sync_api import sync_playwright

    written: list[Path] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=shutil.which("chromium") or shutil.which("chromium-browser"),
            args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"],
        )
        try:
            for name, (width, height) in VIEWPORTS.items():
                with serve(llm_model) as url:
                    page = browser.new_page(viewport={"width": width, "height": height})
                    converse(page, url, name)
                    page.screenshot(path=str(out / name))
                    page.close()
                written.append(out / name)
        finally:
            browser.close()
    return written


# ---------------------------------------------------------------------- main


def warn_if_busy() -> None:
    if (load := os.getloadavg()[0]) > (os.cpu_count() or 2) / 2:
        print(f"warning: load average {load:.1f}: other work shares the cores, and the speeds")
        print("in the pictures show it; rerun on an idle machine for true figures")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm-model", metavar="PATH|NAME", help="default: the default LLM")
    parser.add_argument("--out", type=Path, default=ROOT / "assets", help="default: assets/")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress, live
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    model = args.llm_model or DEFAULTS["llm"].name
    print(f"LLM: {model} ({resolve('llm', args.llm_model)})")
    warn_if_busy()
    print("terminal UI...")
    written = [asyncio.run(terminal_ui(args.llm_model, out))]
    print("browser client...")
    written += browser_client(args.llm_model, out)
    warn_if_busy()
    for path in written:
        print(f"wrote {path}")
    print(f"model: {model}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
