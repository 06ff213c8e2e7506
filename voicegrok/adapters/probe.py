"""Which sound devices exist, without opening them: the UI's first look, and a fresh look
in a child process (PortAudio reads its device list once per process, so a microphone or
speaker plugged in later is seen only by a new one).

``python -m voicegrok.adapters.probe [INPUT] [OUTPUT]`` prints the result as JSON.
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from ..errors import AudioDeviceError
from .device_errors import device_problem
from .speaker import parse_device, sounddevice_module

__all__ = ["Found", "find_devices", "find_devices_afresh", "forget_devices"]

log = logging.getLogger(__name__)

AFRESH_TIMEOUT_S = 20.0  # a child that takes longer than this has found nothing


@dataclass
class Found:
    mic: str | None = None
    """Name of the microphone, or None when there is none."""
    speaker: str | None = None
    problems: list[str] = field(default_factory=list)
    """One line for each missing device (e.g. "no microphone found: ...")."""


def find_devices(input_device: str | None, output_device: str | None) -> Found:
    """The microphone and speaker named (None: the defaults), as this process sees them."""
    found = Found()
    try:
        sd = sounddevice_module()
    except AudioDeviceError as e:
        found.problems.append(str(e))
        return found
    for kind, spec in (("input", input_device), ("output", output_device)):
        try:
            name = str(sd.query_devices(parse_device(spec), kind)["name"])
        except Exception as e:  # PortAudioError / ValueError: no such device
            found.problems.append(device_problem(kind, parse_device(spec), e, sd))
            continue
        if kind == "input":
            found.mic = name
        else:
            found.speaker = name
    if [p.split(":")[0] for p in found.problems] == ["no microphone found", "no speaker found"]:
        found.problems = [  # one line says it for both
            "no microphone or speaker found: this machine has no sound device that PortAudio "
            "can use (connect one, or start PulseAudio/PipeWire; voicegrok devices lists what "
            "is seen)"
        ]
    return found


def find_devices_afresh(input_device: str | None, output_device: str | None) -> Found:
    """:func:`find_devices` in a new process: devices that appeared since this one started
    are seen too. Blocks (a fraction of a second); nothing found if the child fails.

    The child runs at the lowest priority: it starts a Python and PortAudio (0.22 s of CPU
    measured), and the UI looks every few seconds while a device is missing; on two cores
    a look that began just before a question was typed took that time from the LLM."""
    command = [sys.executable, "-m", __name__, input_device or "", output_device or ""]
    if nice := shutil.which("nice"):
        command = [nice, "-n", "19", *command]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=AFRESH_TIMEOUT_S, check=True
        )
        return Found(**json.loads(done.stdout))
    except (OSError, subprocess.SubprocessError, ValueError, TypeError) as e:
        return Found(problems=[f"could not look for sound devices: {e}"])


def forget_devices() -> None:
    """Make PortAudio read the devices again (it reads them once): no stream may be open."""
    try:
        sd = sounddevice_module()
        sd._terminate()
        sd._initialize()
    except Exception as e:  # PortAudio missing or failing: the next probe says so
        log.debug("could not re-read the sound devices: %s", e)


if __name__ == "__main__":
    args = [*sys.argv[1:], "", ""]
    print(json.dumps(asdict(find_devices(args[0] or None, args[1] or None))))
