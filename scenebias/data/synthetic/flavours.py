"""The flavours (output folders) of the generated set, the official layout each is written in, and
class naming."""
from __future__ import annotations

FLAVOURS = ("ucf101", "ucf101_unbiased", "ucf101_swapped", "ucf101_static", "hmdb51", "actor_hmdb51",
            "hmdb51_unbiased", "hmdb51_swapped", "hmdb51_static", "actor_hmdb51_unbiased", "actor_hmdb51_swapped",
            "diving48")
FLAVOUR_FORMAT = {
    "ucf101": "ucf101", "ucf101_unbiased": "ucf101", "ucf101_swapped": "ucf101", "ucf101_static": "ucf101",
    "hmdb51": "hmdb51", "actor_hmdb51": "hmdb51", "hmdb51_unbiased": "hmdb51", "hmdb51_swapped": "hmdb51",
    "hmdb51_static": "hmdb51", "actor_hmdb51_unbiased": "hmdb51", "actor_hmdb51_swapped": "hmdb51",
    "diving48": "diving48",
}


def ucf_class_name(motion: str) -> str:
    """'stop_and_go' -> 'StopAndGo' (UCF101-style CamelCase)."""
    return "".join(p.capitalize() for p in motion.split("_"))
