"""The main job: load the default motions, validate them, write a report and a video of one clip on the G1.

Later stages (clustering, experts, distillation) extend this job; today it is the data foundation's end to end.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from humanoid_gpt import __version__, settings
from humanoid_gpt.io_utils import atomic_folder, write_text_atomic
from humanoid_gpt.motion.check import ClipCheck, check_files, print_checks
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.motion.io import find_motion_files, load_clip
from humanoid_gpt.robot.g1 import G1, load_g1

REPORT_SCHEMA_VERSION = 1


def summarize(checks: list[ClipCheck]) -> dict:
    valid = [c for c in checks if c.status != "invalid"]
    return {
        "clips": len(checks),
        "valid_clips": len(valid),
        "invalid_clips": len(checks) - len(valid),
        "clips_with_warnings": sum(c.status == "warning" for c in checks),
        "frames": sum(c.frames for c in valid),
        "minutes": round(sum(c.seconds for c in valid) / 60.0, 2),
        "performers": sorted({c.performer for c in valid if c.performer}),
    }


def markdown_report(dataset: Path, summary: dict, checks: list[ClipCheck], preview: dict | None) -> str:
    lines = [
        "# Motion data report",
        "",
        f"Dataset: `{dataset}`  ",
        f"{summary['valid_clips']} of {summary['clips']} clips valid, {summary['frames']} frames, "
        f"{summary['minutes']} minutes; {summary['clips_with_warnings']} clips with warnings.",
        "",
    ]
    if preview:
        lines += [
            f"Preview of `{preview['clip']}` on the G1: `{preview['video']}`",
            "",
            f"![preview]({preview['image']})",
            "",
        ]
    lines += ["| clip | frames | fps | seconds | performer | status | findings |", "|---|---|---|---|---|---|---|"]
    for c in checks:
        findings = "<br>".join(f.replace("|", "\\|") for f in c.findings)
        lines.append(
            f"| {c.name} | {c.frames} | {c.fps:g} | {c.seconds:.1f} | {c.performer or ''} | {c.status} | {findings} |"
        )
    return "\n".join(lines) + "\n"


def run_main(
    dataset: Path | None = None,
    out: Path | None = None,
    video: bool = True,
    video_seconds: float = 5.0,
    g1: G1 | None = None,
) -> Path:
    """Run the main job; returns the report folder (``report.md``, ``report.json``, ``preview.mp4``/``.png``)."""
    dataset = dataset or settings.g1_motions_dir()
    if not dataset.is_dir():
        raise FileNotFoundError(
            f"motion folder {dataset} does not exist. Fix: run `hgpt data fetch`, or set HGPT_DATA_ROOT to a folder "
            "holding g1_motions/<dataset>/ (with ../shared beside the project: HGPT_DATA_ROOT=../shared/data)"
        )
    out = out or settings.output_root() / "main"
    g1 = g1 or load_g1()
    started = time.time()
    checks = check_files(find_motion_files([dataset]), g1, progress=True)
    print_checks(checks)
    summary = summarize(checks)
    with atomic_folder(out) as stage:  # a rerun or a crash never leaves old and new outputs side by side
        preview = None
        if video and summary["valid_clips"]:
            preview = _render_preview(g1, checks, stage, video_seconds)
        report = {
            "schema_version": REPORT_SCHEMA_VERSION,
            "humanoid_gpt_version": __version__,
            "dataset": str(dataset),
            "robot_model": str(g1.xml_path),
            "summary": summary,
            "preview": preview,
            "clips": [c.to_dict() for c in checks],
            "seconds": round(time.time() - started, 1),
        }
        write_text_atomic(stage / "report.json", json.dumps(report, indent=2))
        write_text_atomic(stage / "report.md", markdown_report(dataset, summary, checks, preview))
    return out


def _render_preview(g1: G1, checks: list[ClipCheck], out: Path, seconds: float) -> dict:
    from humanoid_gpt.render import render_clip, write_filmstrip, write_video

    valid = [c for c in checks if c.status != "invalid"]
    # A dance shows the most of the robot; fall back to the first valid clip.
    pick = next((c for c in valid if "dance" in c.name), valid[0])
    clip = load_clip(pick.path, g1=g1)
    start = liveliest_window(clip, seconds)
    clip = clip.slice(start)
    frames = render_clip(g1, clip, fps=30.0, max_seconds=seconds)
    write_video(frames, out / "preview.mp4", fps=30.0)
    write_filmstrip(frames, out / "preview.png")
    return {
        "clip": pick.name,
        "start_seconds": round(start / clip.fps, 2),
        "video": "preview.mp4",
        "image": "preview.png",
        "seconds": round(len(frames) / 30.0, 2),
    }


def liveliest_window(clip: MotionClip, seconds: float) -> int:
    """First frame of the ``seconds``-long window with the most joint motion (mocap clips often open in a T-pose)."""
    n = min(clip.num_frames, int(seconds * clip.fps) + 1)
    speed = np.abs(clip.joint_vel()).sum(axis=1)
    window = np.convolve(speed, np.ones(n), mode="valid")  # window[i]: total motion of frames i .. i + n - 1
    return int(np.argmax(window))
