"""A missing or busy sound device is told in plain words, with what to do about it."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest

from voicegrok.adapters.device_errors import device_problem


class PortAudioError(Exception):
    """What sounddevice raises (its class is not importable without PortAudio)."""


def machine(*devices: tuple[int, int]) -> Any:
    """A sounddevice stand-in that lists devices as (input channels, output channels)."""
    rows = [{"max_input_channels": i, "max_output_channels": o} for i, o in devices]
    return SimpleNamespace(query_devices=lambda: rows)


def test_no_default_device_on_a_machine_without_sound_cards() -> None:
    line = device_problem("input", None, PortAudioError("Error querying device -1"), machine())
    assert line.startswith("no microphone found")
    assert "Error querying" not in line and "voicegrok devices" in line
    line = device_problem("output", None, PortAudioError("Error querying device -1"), machine())
    assert line.startswith("no speaker found")


def test_a_device_that_does_not_exist_is_named_with_the_option_to_pick_another() -> None:
    sd = machine((2, 0), (0, 2))
    line = device_problem("input", "USB mic", ValueError("No input device matching 'USB mic'"), sd)
    assert line == (
        "no microphone named 'USB mic': pick one that voicegrok devices lists, with --input-device"
    )
    line = device_problem("output", 7, PortAudioError("Error querying device 7"), sd)
    assert line.startswith("no speaker number 7:") and "--output-device" in line


def test_a_busy_device_says_so() -> None:
    error = PortAudioError("Error opening RawOutputStream: Device unavailable [PaErrorCode -9985]")
    line = device_problem("output", None, error, machine((0, 2)))
    assert line.startswith("the default speaker is busy")


def test_any_other_failure_keeps_the_reason() -> None:
    line = device_problem("input", "hw:1", PortAudioError("Invalid sample rate"), machine((1, 0)))
    assert "Invalid sample rate" in line and "--input-device" in line


@pytest.mark.skipif(sys.platform != "linux", reason="a machine without sound devices")
def test_talk_on_a_machine_without_sound_devices_says_what_to_do(
    cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No sound server and no card: the person reads one plain line, not PortAudio's."""
    monkeypatch.setenv("PULSE_SERVER", "unix:/nonexistent/pulse")
    run = cli("talk")
    assert run.code == 1
    assert "Error querying" not in run.err
    assert "voicegrok: error: no microphone found" in run.err
