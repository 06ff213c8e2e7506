"""The help, settings and past-conversations screens of the terminal UI."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Markdown, OptionList, Select
from textual.widgets.option_list import Option

from .. import models
from ..history import SavedConversation
from ..userconfig import SENSITIVITY_SILENCE_MS, UNSURE_SILENCE_MS, UserConfig

__all__ = ["HelpScreen", "PastScreen", "SettingsScreen"]

HELP = """\
# voicegrok

Speak, or type a question and press **Enter**. The answer streams in and is spoken
clause by clause; speak (or press **Esc**) to interrupt it.

| key | what it does |
| --- | --- |
| Enter | send the typed question |
| Esc | interrupt the answer |
| F1 | this help |
| F2 | settings: devices, voice, model, end-of-turn sensitivity |
| F3 | mute / unmute the microphone |
| F4 | push-to-talk: press to record, press again to send (no waiting for silence) |
| F5 | past conversations: open one to go on with it |
| Ctrl+N | new conversation (forget the history) |
| Ctrl+Q | quit |

The side panel shows tokens per second while the answer streams, where the time of the
last turn went, and end of speech → first audio for recent turns.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("f1", "dismiss", "Close"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="help-box"):
            yield Markdown(HELP)
            yield Button("Close", id="close", variant="primary")

    @on(Button.Pressed, "#close")
    def close(self) -> None:
        self.dismiss()


class PastScreen(ModalScreen[int | None]):
    """The kept conversations, newest first; choosing one returns its id."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("f5", "dismiss", "Close"),
    ]

    def __init__(self, found: list[SavedConversation]) -> None:
        super().__init__()
        self.found = found

    def compose(self) -> ComposeResult:
        import time

        with Vertical(id="past-box"):
            yield Label("Past conversations: Enter opens one, Esc closes", id="past-title")
            options = [
                Option(
                    f"{time.strftime('%b %d %H:%M', time.localtime(c.started))}  "
                    f"{c.turns:>3} turns  {c.first_question[:70]}",
                    id=str(c.id),
                )
                for c in self.found
            ]
            if not options:
                yield Label("No conversation kept yet.")
            yield OptionList(*options, id="past")

    @on(OptionList.OptionSelected, "#past")
    def chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(int(event.option_id) if event.option_id else None)


def _catalog(kind: str) -> list[tuple[str, str]]:
    out = []
    for entry in models.catalog():
        if entry.kind == kind:
            present = "" if entry.locate() is not None else " (not installed)"
            out.append((f"{entry.name}{present}", entry.name))
    return out


def _options(found: list[tuple[str, str]], current: str | None) -> list[tuple[str, str]]:
    """The choices, with "default" first and the current value kept even if not found."""
    options = [("default", ""), *found]
    if current and current not in {v for _, v in options}:
        options.append((current, current))
    return options


class SettingsScreen(ModalScreen[UserConfig | None]):
    """Devices, voice, LLM and end-of-turn sensitivity; Save returns the new config."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        config: UserConfig,
        *,
        inputs: list[tuple[str, str]],
        outputs: list[tuple[str, str]],
    ) -> None:
        """``inputs`` / ``outputs``: the devices to offer, as (label, name) pairs."""
        super().__init__()
        self.config = config
        self.inputs = inputs
        self.outputs = outputs

    def compose(self) -> ComposeResult:
        c = self.config
        fields = [
            ("Microphone", "input_device", _options(self.inputs, c.input_device)),
            ("Speaker", "output_device", _options(self.outputs, c.output_device)),
            ("Voice", "voice", _options(_catalog("tts"), c.voice)),
            ("LLM model", "llm_model", _options(_catalog("llm"), c.llm_model)),
        ]
        with Vertical(id="settings-box"):
            yield Label("Settings", id="settings-title")
            with Grid(id="settings-grid"):
                for label, name, options in fields:
                    yield Label(label)
                    yield Select(
                        options,
                        value=getattr(c, name) or "",
                        allow_blank=False,
                        id=name,
                    )
                yield Label("End of turn")
                yield Select(
                    [
                        (f"{k} ({ms}-{UNSURE_SILENCE_MS[k]} ms of silence)", k)
                        for k, ms in SENSITIVITY_SILENCE_MS.items()
                    ],
                    value=c.end_of_turn,
                    allow_blank=False,
                    id="end_of_turn",
                )
            with Horizontal(id="settings-buttons"):
                yield Button("Save", id="save", variant="primary")
                yield Button("Cancel", id="cancel")

    def chosen(self) -> UserConfig:
        """The settings as chosen on the screen."""

        def value(name: str) -> str | None:
            v = self.query_one(f"#{name}", Select).value
            return v if isinstance(v, str) and v else None

        # From the config shown, so that flags given for this run are not saved unless the
        # person changed them here (see UserConfig.choose).
        return self.config.choose(
            input_device=value("input_device"),
            output_device=value("output_device"),
            voice=value("voice"),
            llm_model=value("llm_model"),
            end_of_turn=value("end_of_turn") or "normal",
        )

    @on(Button.Pressed, "#save")
    def save(self) -> None:
        self.dismiss(self.chosen())

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
