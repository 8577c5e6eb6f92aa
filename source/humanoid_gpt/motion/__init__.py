"""Motion clips: the canonical clip, file formats, validation and the batched motion library."""

from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.io import load_clip, load_clips, save_beyondmimic_npz, save_clip
from humanoid_gpt.motion.validate import Finding, ValidationConfig, validate_clip

__all__ = [
    "Finding",
    "MotionClip",
    "ValidationConfig",
    "load_clip",
    "load_clips",
    "save_beyondmimic_npz",
    "save_clip",
    "validate_clip",
]
