"""What a person reads when a sound device is missing or refuses to open.

PortAudio's own messages ("Error querying device -1", "Device unavailable [PaErrorCode
-9985]") name neither the device nor the fix. :func:`device_problem` says which device,
what is wrong with it in plain words, and what to do about it.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import first_line

__all__ = ["device_problem"]

_WHAT = {"input": "microphone", "output": "speaker"}
_OPTION = {"input": "--input-device", "output": "--output-device"}


def _count(sd: ModuleType | None, kind: str) -> int | None:
    """How many devices of ``kind`` PortAudio sees (None: it cannot tell)."""
    if sd is None:
        return None
    key = "max_input_channels" if kind == "input" else "max_output_channels"
    try:
        return sum(1 for d in sd.query_devices() if int(d[key]) > 0)
    except Exception:  # PortAudio could not list them either
        return None


def device_problem(
    kind: str, device: int | str | None, error: BaseException, sd: ModuleType | None = None
) -> str:
    """One line for a ``kind`` (``"input"`` or ``"output"``) device that failed with
    ``error``; ``device`` as the person named it (None: the default one); ``sd``: the
    sounddevice module, to count the devices there are."""
    what, option = _WHAT[kind], _OPTION[kind]
    raw = first_line(error)
    low = raw.lower()
    if device is None and (_count(sd, kind) == 0 or "device -1" in low):
        return (
            f"no {what} found: this machine has no sound {kind} device that PortAudio can "
            "use (connect one, or start PulseAudio/PipeWire; voicegrok devices lists what "
            "is seen)"
        )
    name = f"{what} {device!r}" if device is not None else f"default {what}"
    if ("no " in low and "matching" in low) or "invalid device" in low or "querying" in low:
        called = f"number {device}" if isinstance(device, int) else f"named {device!r}"
        return f"no {what} {called}: pick one that voicegrok devices lists, with {option}"
    if "unavailable" in low or "busy" in low or "-9985" in low:
        return (
            f"the {name} is busy: close the other programs that use it, or pick another "
            f"with {option}"
        )
    return (
        f"cannot use the {name} ({raw}): pick another with {option} (voicegrok devices lists them)"
    )
