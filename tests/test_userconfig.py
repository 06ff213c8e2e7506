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
