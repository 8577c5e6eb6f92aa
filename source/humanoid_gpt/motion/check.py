"""Checking many motion files at once: one row per file, never stopping at the first bad one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.motion.io import read_clip
from humanoid_gpt.motion.rates import check_fps
from humanoid_gpt.motion.validate import ValidationConfig, validate_clip
from humanoid_gpt.robot.g1 import G1


@dataclass
class ClipCheck:
    path: str
    name: str
    status: str  # "ok", "warning" or "invalid"
    frames: int = 0
    fps: float = 0.0
    seconds: float = 0.0
    performer: str | None = None
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def check_file(
    path: Path, g1: G1, fps: float | None = None, config: ValidationConfig = ValidationConfig()
) -> ClipCheck:
    """Read and validate one file; read failures become an ``invalid`` row carrying the error. ``fps`` is the frame
    rate of files that do not store one (CSV, .npy) and overrides a stored one (see
    :func:`humanoid_gpt.motion.io.read_clip`). A rate that was only assumed is a warning on the row."""
    try:
        clip = read_clip(path, fps=fps, g1=g1)
    except (HGPTError, OSError, ValueError) as e:
        return ClipCheck(str(path), path.stem, "invalid", findings=[f"error: {e}"])
    findings = [str(f) for f in validate_clip(clip, g1.joint_limits, config, g1)]
    if clip.provenance.get("fps_source") == "assumed":
        findings.append(
            f"warning: fps: {clip.fps:g} fps assumed, nothing stated the rate; pass --fps (fps=...) with the real one"
        )
    status = "invalid" if any(f.startswith("error") for f in findings) else "warning" if findings else "ok"
    return ClipCheck(
        str(path),
        clip.name,
        status,
        clip.num_frames,
        clip.fps,
        round(clip.duration, 3),
        clip.provenance.get("performer"),
        findings,
    )


def check_files(files: list[Path], g1: G1, fps: float | None = None, progress: bool = False) -> list[ClipCheck]:
    """:func:`check_file` for every file. A bad ``fps`` (<= 0, NaN, > 1000) is one clear error up front, not one
    per file."""
    fps = check_fps(fps)
    if progress:
        from rich.progress import track

        files = track(files, description="checking motions", transient=True)
    return [check_file(f, g1, fps) for f in files]


def print_checks(checks: list[ClipCheck]) -> None:
    """A table of clips and their checks on the terminal."""
    from rich.table import Table

    from humanoid_gpt.ui import console

    table = Table(title=f"{len(checks)} motion files")
    for col in ("clip", "frames", "fps", "seconds", "status", "findings"):
        table.add_column(col, overflow="fold")
    style = {"ok": "green", "warning": "yellow", "invalid": "red"}
    for c in checks:
        table.add_row(
            c.name,
            str(c.frames),
            f"{c.fps:g}",
            f"{c.seconds:.1f}",
            f"[{style[c.status]}]{c.status}[/]",
            "\n".join(c.findings),
        )
    console().print(table)
