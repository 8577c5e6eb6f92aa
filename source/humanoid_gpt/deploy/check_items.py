"""The items of a policy check (``hgpt sim2sim check``): what a file declares about the robot it was made for, each
item's verdict, and the comparisons of per-joint values against the robot, shared by the metadata checks
(:mod:`humanoid_gpt.deploy.check_static`) and the motion-export checks (:mod:`humanoid_gpt.deploy.check_motion`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from humanoid_gpt.robot.g1 import G1

STATUSES = ("ok", "mismatch", "warning", "info", "skipped")
RTOL, ATOL = 2e-3, 2e-3
"""BeyondMimic writes three decimals: values agree to them."""


@dataclass
class CheckItem:
    name: str
    status: str  # one of STATUSES
    detail: str
    fix: str = ""


@dataclass
class PolicyCheck:
    """The items checked for one file; ``dynamic`` holds the standing trials (None when not run)."""

    path: str
    robot: str
    source: str  # "humanoid_gpt", "beyondmimic" or "unknown"
    items: list[CheckItem] = field(default_factory=list)
    dynamic: dict | None = None

    @property
    def ok(self) -> bool:
        return not any(i.status == "mismatch" for i in self.items)

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.items.append(CheckItem(name, status, detail, fix))

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "robot": self.robot,
            "source": self.source,
            "ok": self.ok,
            "items": [asdict(i) for i in self.items],
            "dynamic": self.dynamic,
        }


@dataclass
class Declared:
    """What a policy file says about the robot it was made for, in the file's own joint order."""

    joint_names: list[str]
    kp: np.ndarray | None = None
    kd: np.ndarray | None = None
    action_scale: np.ndarray | None = None
    effort_limit: np.ndarray | None = None
    default_joint_pos: np.ndarray | None = None
    control_dt: float | None = None
    physics_dt: float | None = None
    quaternion: str | None = None
    observation: list[tuple[str, int | None]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    """Items the layout's exporter fixes rather than writes (``action_scale``: "1.0, ..."): reported, not compared."""


def in_robot_order(declared: Declared, values: np.ndarray | None, g1: G1) -> np.ndarray | None:
    if values is None or len(values) != len(declared.joint_names):
        return None
    index = {n: i for i, n in enumerate(declared.joint_names)}
    if any(n not in index for n in g1.joint_names):
        return None
    return np.array([values[index[n]] for n in g1.joint_names])


def differing(g1: G1, got: np.ndarray, want: np.ndarray) -> str:
    bad = np.flatnonzero(~np.isclose(got, want, rtol=RTOL, atol=ATOL))
    shown = ", ".join(f"{g1.joint_names[i]} {got[i]:.4g} (robot {want[i]:.4g})" for i in bad[:4])
    return f"{len(bad)} joints differ: {shown}{', ...' if len(bad) > 4 else ''}"


def check_gain(check: PolicyCheck, name: str, got, want, other, g1: G1) -> None:
    """kp or kd: equal, swapped with the other gain, uniformly scaled, or different per joint."""
    formula = "armature (2 pi 10 Hz)^2" if name == "kp" else "2 * 2 * armature * 2 pi 10 Hz"
    if got is None:
        check.add(name, "mismatch", "not in the file (or not for every joint)", "export the gains with the policy")
        return
    if np.allclose(got, want, rtol=RTOL, atol=ATOL):
        check.add(name, "ok", f"{name} = {formula} on all 29 joints (by name)")
        return
    if np.allclose(got, other, rtol=RTOL, atol=ATOL):
        check.add(name, "mismatch", "kp and kd are swapped", "swap joint_stiffness and joint_damping back")
        return
    ratio = got / want
    if np.allclose(ratio, ratio.mean(), rtol=RTOL):
        detail = f"{name} is {ratio.mean():.3g}x the robot's on every joint"
    else:
        detail = differing(g1, got, want)
    check.add(
        name, "mismatch", detail, f"{name} must be {formula} per joint (hgpt robot info); retrain or export again"
    )
