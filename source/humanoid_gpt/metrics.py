"""The paper's tracking metrics, with their units as part of the contract (docs/architecture.md, "Metrics").

- SR: share of episodes that reach the motion's end without a fall.
- MPJPE (rad) / MPJVE (rad/s): mean absolute joint position / velocity error over the 29 joints and all frames.
- root velocity error (m/s): mean Euclidean norm of the root linear velocity error.
- MPKPE (mm): mean keypoint distance in each side's gravity-aligned heading frame; G-MPKPE (mm): in the world frame.
- root position (m, world) and orientation (rad) errors, for judging experts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from humanoid_gpt.io_utils import write_text_atomic
from humanoid_gpt.mdp.frames import to_heading_frame
from humanoid_gpt.rotations import quat_error_angle
from humanoid_gpt.state import KinematicState

ERROR_KEYS = ("mpjpe", "mpjve", "root_vel_err", "mpkpe_mm", "g_mpkpe_mm", "root_pos_err", "root_rot_err")


def step_errors(robot: KinematicState, ref: KinematicState) -> dict[str, torch.Tensor]:
    """Per-env tracking errors (N,) for one frame."""
    return {
        "mpjpe": (robot.joint_pos - ref.joint_pos).abs().mean(-1),
        "mpjve": (robot.joint_vel - ref.joint_vel).abs().mean(-1),
        "root_vel_err": (robot.root_lin_vel - ref.root_lin_vel).norm(dim=-1),
        "mpkpe_mm": 1000.0 * (to_heading_frame(robot).pos - to_heading_frame(ref).pos).norm(dim=-1).mean(-1),
        "g_mpkpe_mm": 1000.0 * (robot.body_pos - ref.body_pos).norm(dim=-1).mean(-1),
        "root_pos_err": (robot.root_pos - ref.root_pos).norm(dim=-1),
        "root_rot_err": quat_error_angle(robot.root_quat, ref.root_quat),
    }


@dataclass
class EpisodeRecord:
    clip: int
    success: bool
    steps: int
    sums: dict[str, float]  # error sums over the episode's frames
    non_finite_action: bool = False  # ended because the policy output NaN or inf


@dataclass
class MetricsAccumulator:
    """Sums per-env errors over steps and closes an episode record when an env is done."""

    num_envs: int
    device: torch.device | str = "cpu"
    records: list[EpisodeRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sums = {k: torch.zeros(self.num_envs, dtype=torch.float64, device=self.device) for k in ERROR_KEYS}
        self._steps = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)

    def add(self, errors: dict[str, torch.Tensor], active: torch.Tensor | None = None) -> None:
        mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device) if active is None else active
        for k in ERROR_KEYS:
            self._sums[k] += torch.where(mask, errors[k].double(), 0.0)
        self._steps += mask.long()

    def close(
        self,
        env_ids: torch.Tensor,
        clip_ids: torch.Tensor,
        success: torch.Tensor,
        bad_action: torch.Tensor | None = None,
    ) -> None:
        """Record the episodes of ``env_ids`` (ended now) and clear their sums. ``bad_action``: the episode ended on
        a non-finite action (a broken policy: a failure, reported apart)."""
        bad = torch.zeros_like(success) if bad_action is None else bad_action
        for e, c, s, b in zip(env_ids.tolist(), clip_ids.tolist(), success.tolist(), bad.tolist(), strict=True):
            sums = {k: float(self._sums[k][e]) for k in ERROR_KEYS}
            self.records.append(EpisodeRecord(int(c), bool(s), int(self._steps[e]), sums, bool(b)))
        for k in ERROR_KEYS:
            self._sums[k][env_ids] = 0.0
        self._steps[env_ids] = 0


def summarize(records: list[EpisodeRecord]) -> dict[str, float]:
    """SR (%) over episodes; errors averaged over all tracked frames (frame-weighted), as the paper reports them."""
    if not records:
        return {"episodes": 0}
    frames = sum(r.steps for r in records)
    out = {
        "episodes": len(records),
        "sr_percent": 100.0 * sum(r.success for r in records) / len(records),
        "falls": sum(not r.success for r in records),
        "non_finite_action_episodes": sum(r.non_finite_action for r in records),
        "frames": frames,
        "mean_episode_steps": frames / len(records),
    }
    failed = [r.steps for r in records if not r.success]
    # How long failed episodes lasted: tells "fell at once" from "tracked most of the window, then fell".
    out["mean_fail_steps"] = sum(failed) / len(failed) if failed else None
    for k in ERROR_KEYS:
        out[k] = sum(r.sums[k] for r in records) / max(frames, 1)
    return out


def seconds(summary: dict, control_dt: float) -> dict:
    """``summary`` with its step counts also in seconds: ``mean_episode_s`` (stable tracking time) and ``fail_s``
    (time until the fall, over failed episodes; None when none failed)."""
    fail = summary.get("mean_fail_steps")
    return {
        **summary,
        "mean_episode_s": summary.get("mean_episode_steps", 0.0) * control_dt,
        "fail_s": None if fail is None else fail * control_dt,
    }


def write_report(result: dict, path: str | Path) -> Path:
    write_text_atomic(path, json.dumps(result, indent=2))
    return Path(path)


def cached_evaluation(path: Path, checkpoint: Path | None, run: Callable[[], dict]) -> dict:
    """``run()``'s evaluation result, computed once per ``path`` and ``checkpoint``: an interrupted caller that
    resumes skips the evaluations it finished (a recording is not kept)."""
    tag = str(checkpoint) if checkpoint is not None else ""
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("checkpoint") == tag:
            return saved["result"]
    result = run()
    result.pop("recording", None)
    write_text_atomic(path, json.dumps({"checkpoint": tag, "result": result}, indent=1, default=float))
    return result


TABLE_COLUMNS = (
    ("sr_percent", "SR (%)", 1),
    ("mpjpe", "MPJPE (rad)", 3),
    ("mpjve", "MPJVE (rad/s)", 3),
    ("root_vel_err", "root vel (m/s)", 3),
    ("mpkpe_mm", "MPKPE (mm)", 1),
    ("g_mpkpe_mm", "G-MPKPE (mm)", 1),
    ("mean_episode_s", "stable (s)", 1),
    ("fail_s", "fell after (s)", 1),
)
"""The paper's table: aggregate metric key, header with its unit, decimals; then the mean time tracked (all windows)
and, over the failed windows only, the mean time until the fall (a dash when none failed). G-MPKPE far above MPKPE
with a high SR means the robot kept its pose but drifted off the path."""


def metrics_table(
    lead: Sequence[str], rows: Iterable[tuple[Sequence[str], dict]], columns: Sequence[tuple] = TABLE_COLUMNS
) -> list[str]:
    """Markdown lines of a table in the paper's layout: the ``lead`` columns (policy, cluster, tokens, ...), then one
    per metric of ``columns``. Each row is its lead cells and its metrics; a metric it lacks shows as a dash."""
    lines = ["| " + " | ".join([*lead, *(c[1] for c in columns)]) + " |", "|---" * (len(lead) + len(columns)) + "|"]
    for cells, metrics in rows:
        values = [f"{metrics[k]:.{d}f}" if metrics.get(k) is not None else "—" for k, _, d in columns]
        lines.append("| " + " | ".join([*cells, *values]) + " |")
    return lines
