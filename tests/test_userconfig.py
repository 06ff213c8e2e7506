"""The saved settings file: round trip, and one-line errors for every broken file."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicegrok.errors import UsageError
from voicegrok.userconfig import UserConfig, load_user_config, save_user_config


def test_saved_settings_load_back(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    config = UserConfig(input_device="USB Headset", llm_model="qwen2.5-0.5b", end_of_turn="fast")
    assert save_user_config(config, path) == path
    assert load_user_config(path) == config
    assert load_user_config(path).end_silence_ms == 320
    assert not list(path.parent.glob("*.tmp")), "written atomically, no leftovers"


def test_a_missing_file_is_the_defaults(tmp_path: Path) -> None:
    assert load_user_config(tmp_path / "none.toml") == UserConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("end_of_turn = ", "cannot read the config"),
        ("colour = 'blue'", "unknown setting 'colour'"),
        ("voice = 3", "voice must be a string"),
        ("end_of_turn = 'sometimes'", "end_of_turn must be one of fast, normal, patient"),
    ],
)
def test_a_broken_file_is_a_one_line_error_naming_it(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as e:
        load_user_config(path)
    assert str(path) in str(e.value) and message in str(e.value)
    assert "\n" not in str(e.value)


def test_flags_given_for_one_run_are_used_but_not_saved(tmp_path: Path) -> None:
    """``--llm-model X`` wins for the run; saving a change of voice keeps X out of the file,
    and keeps the model saved under it."""
    path = tmp_path / "config.toml"
    save_user_config(UserConfig(llm_model="smollm2-135m", end_of_turn="fast"), path)
    config = load_user_config(path).with_flags(llm_model="other.gguf", input_device=None)
    assert config.llm_model == "other.gguf" and config.input_device is None
    save_user_config(config.choose(voice="joe-medium", llm_model="other.gguf"), path)
    assert load_user_config(path) == UserConfig(
        llm_model="smollm2-135m", voice="joe-medium", end_of_turn="fast"
    )


def test_a_flag_the_person_changes_on_the_screen_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    config = UserConfig().with_flags(llm_model="other.gguf", output_device="2")
    chosen = config.choose(llm_model="smollm2-135m")
    save_user_config(chosen, path)
    assert load_user_config(path) == UserConfig(llm_model="smollm2-135m")
    # chosen back to the flag's value later in the same run: now it is the person's choice
    save_user_config(chosen.choose(llm_model="other.gguf"), path)
    assert load_user_config(path) == UserConfig(llm_model="other.gguf")


async def test_saving_the_settings_screen_does_not_save_the_command_line_flags(
    tmp_path: Path,
) -> None:
    """``voicegrok --llm-model X``, then F2, a new voice, Save: config.toml gets the voice,
    not ``llm_model = X``; the running UI keeps X."""
    from textual.widgets import Select

    from voicegrok.cli import build_parser, settings_from
    from voicegrok.cli.common import user_config
    from voicegrok.testing import FakeBackend
    from voicegrok.ui import VoicegrokApp
    from voicegrok.ui.screens import SettingsScreen

    path = tmp_path / "config.toml"
    save_user_config(UserConfig(end_of_turn="patient"), path)
    args = build_parser().parse_args(
        ["ui", "--llm-model", "flag.gguf", "--input-device", "7", "--config", str(path)]
    )
    config, config_path = user_config(args)
    backend = FakeBackend()
    app = VoicegrokApp(settings_from(args), config, config_path=config_path, backend=backend)
    async with app.run_test(size=(120, 40)) as pilot:
        while backend.loads < 1:
            await pilot.pause(0.05)
        await pilot.press("f2")
        while not isinstance(app.screen, SettingsScreen):
            await pilot.pause(0.05)
        assert app.screen.query_one("#llm_model", Select).value == "flag.gguf"
        app.screen.query_one("#voice", Select).value = "joe-medium"
        await pilot.click("#save")
        while backend.loads < 2:  # restarted with the new settings
            await pilot.pause(0.05)
        assert app.config.llm_model == "flag.gguf" and app.config.input_device == "7"
    assert load_user_config(path) == UserConfig(voice="joe-medium", end_of_turn="patient")
