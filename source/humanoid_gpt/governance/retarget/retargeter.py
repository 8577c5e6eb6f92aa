"""The retargeter: human mocap -> G1 clip with mink IK, frame by frame, warm-started from the previous frame.

One code path for batch and streaming. :meth:`Retargeter.step` retargets one frame (live teleoperation);
:meth:`Retargeter.retarget` a whole motion: it smooths the human input and computes the stateless targets of every
frame in one vectorised pass (:mod:`.filters`, :mod:`.targets`), then runs exactly what ``step`` runs per frame
(contact locking, :mod:`.contacts`, and the IK), so both give the same result to float rounding. The input smoothing
is a short centred Gaussian (``smooth_time``), so a stream answers :attr:`Retargeter.lookahead` frames late (2 at
30 fps; ``smooth_time=0`` for none) and :meth:`Retargeter.flush` ends a sequence.

The IK, per frame: mink frame tasks (position and orientation) for the bodies of the correspondence table; a
posture task towards the G1's default pose as a regulariser; as QP constraints, the model's joint-position limits,
the G1's joint-velocity limits at the clip's frame time, the feet's collision capsules kept above the floor, and the
arms kept off the torso, pelvis and thighs (``collision_avoidance``). A fixed number of QP steps per frame
(``iterations``, 2) from the previous frame's solution; the first frame starts from the G1's default pose at the
human's root and gets ``first_frame_iterations`` steps without velocity limits, so no result depends on a collapsed
first frame.

Output: a :class:`~humanoid_gpt.motion.clip.MotionClip` whose ``provenance["retarget"]`` records the source file,
skeleton preset, calibration (scale, stature, offsets), retargeter version, config hash, status and the per-frame IK
residual ``residual_mm``: the largest distance (mm) between a position-tracked body (pelvis, knees, ankles, elbows,
wrists) and its target. A :class:`RetargetReport` lists the frames whose residual exceeds ``residual_threshold``;
such a clip is never written as good (``status`` is ``"flagged"``, and a :class:`RetargetWarning` names the file
and frames). The per-body residuals (T, B) in metres are :attr:`Retargeter.residuals` after a run.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import mink
import numpy as np
from mink.lie import SE3

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.governance.mocap import HumanMotion, read_mocap
from humanoid_gpt.governance.retarget.contacts import ContactLock
from humanoid_gpt.governance.retarget.correspondence import (
    BodyTarget,
    Correspondence,
    RetargetError,
    RetargetWarning,
    resolve,
)
from humanoid_gpt.governance.retarget.filters import Smoother, gaussian_kernel, smooth_sequence
from humanoid_gpt.governance.retarget.targets import (
    FEET,
    Calibration,
    G1Geometry,
    HumanFrames,
    TargetBuilder,
    calibrate,
    mat_to_quat,
)
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1, load_g1
from humanoid_gpt.runs import config_hash

RETARGETER_VERSION = "1.0"

#: The G1's joint velocity limits (rad/s) by motor, from Unitree's G1 29-DoF description (the MJCF has none).
G1_VELOCITY_LIMITS: dict[str, float] = {
    "hip_pitch": 32.0, "hip_roll": 20.0, "hip_yaw": 32.0, "knee": 20.0, "ankle_pitch": 37.0, "ankle_roll": 37.0,
    "waist_yaw": 32.0, "waist_roll": 37.0, "waist_pitch": 37.0,
    "shoulder_pitch": 37.0, "shoulder_roll": 37.0, "shoulder_yaw": 37.0, "elbow": 37.0,
    "wrist_roll": 37.0, "wrist_pitch": 22.0, "wrist_yaw": 22.0,
}  # fmt: skip

#: Foot capsules (of 7 per sole) held above the floor: the outer long ones and the short front corners.
FLOOR_CAPSULES = (1, 2, 6, 7)

#: Arm geoms kept off the torso, pelvis and thighs when ``collision_avoidance`` is on.
ARM_GEOMS = ("shoulder_yaw_collision", "elbow_yaw_collision", "wrist_collision", "hand_collision")
BODY_GEOMS = (
    "pelvis_collision", "torso_collision", "left_hip_collision", "right_hip_collision",
    "left_thigh_collision", "right_thigh_collision",
)  # fmt: skip


@dataclass(frozen=True)
class RetargetConfig:
    """Everything that changes a retargeting result (hashed into the clip's provenance)."""

    iterations: int = 2
    extra_iterations: int = 0  # up to this many more steps on a frame whose feet miss by over foot_tolerance
    foot_tolerance: float = 0.01
    first_frame_iterations: int = 60
    solver: str = "daqp"
    damping: float = 0.03  # Levenberg-Marquardt damping: steadies redundant joints (wrists, waist) frame to frame
    posture_cost: float = 0.02
    waist_posture_cost: float = 0.2
    velocity_limits: bool = True
    velocity_scale: float = 1.0
    collision_avoidance: bool = True
    collision_margin: float = 0.01
    collision_band: float = 0.03
    collision_gain: float = 0.85
    floor_limit: bool = True  # feet kept above the floor as a QP constraint
    floor_clearance: float = 0.002  # m: the QP keeps foot capsules this far above the floor
    contact_height: float = 0.03  # human foot joint above its resting height (m) for contact
    contact_speed: float = 0.35  # human foot speed (m/s) below which it may be planted
    contact_lock: bool = True
    release_time: float = 0.2
    floor_margin: float = 0.0005  # m: planted ankle targets this far above the capsule floor
    clearance_deadband: float = 0.01  # m (human): foot-joint heights this close to rest count as on the floor
    support_softness: float = 0.005  # m: soft maximum between the feet's pelvis heights
    moving_clearance: float = 0.03  # m: most a moving (unplanted) foot is lifted off the floor ...
    moving_clearance_time: float = 0.03  # s: ... by its speed times this
    residual_threshold: float = 0.1  # m: frames whose worst keypoint misses its target by more are flagged
    smooth_time: float = 0.033  # s: sigma of the centred Gaussian on the human input (0: off, no streaming delay)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class RetargetReport:
    """What a retargeting run says about itself: per-frame residuals and the frames not to trust."""

    source: str
    frames: int
    threshold_mm: float
    residual_mm: np.ndarray  # (T,) largest keypoint position error per frame
    worst_body: list[str]  # (T,) the body with that error
    flagged: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.flagged

    def summary(self) -> dict:
        r = self.residual_mm
        return {
            "source": self.source,
            "frames": self.frames,
            "threshold_mm": self.threshold_mm,
            "residual_mean_mm": round(float(r.mean()), 2) if len(r) else 0.0,
            "residual_max_mm": round(float(r.max()), 2) if len(r) else 0.0,
            "flagged_frames": len(self.flagged),
            "first_flagged": self.flagged[:20],
        }

    def describe(self) -> str:
        if self.ok:
            worst = self.residual_mm.max() if len(self.residual_mm) else 0.0
            return f"{self.source}: {self.frames} frames retargeted, worst keypoint residual {worst:.1f} mm"
        spans = _spans(self.flagged)
        bodies = sorted({self.worst_body[f] for f in self.flagged})
        return (
            f"{self.source}: {len(self.flagged)} of {self.frames} frames flagged (keypoint residual over "
            f"{self.threshold_mm:.0f} mm, worst {self.residual_mm.max():.0f} mm at frame "
            f"{int(self.residual_mm.argmax())}; bodies {', '.join(bodies)}); frames {spans}"
        )


def _spans(frames: list[int]) -> str:
    out, start = [], None
    for i, f in enumerate(frames):
        if start is None:
            start = f
        if i + 1 == len(frames) or frames[i + 1] != f + 1:
            out.append(f"{start}" if start == f else f"{start}-{f}")
            start = None
    return ", ".join(out[:10]) + (" ..." if len(out) > 10 else "")


def _motor_key(joint: str) -> str:
    return joint.removeprefix("left_").removeprefix("right_").removesuffix("_joint")


class Retargeter:
    """Retargets one performer's motion to the G1 (see the module docstring).

    Build it with :meth:`for_motion` (calibrates scale, foot heights and orientation offsets on a clip), then call
    :meth:`retarget` on that clip, or :meth:`reset` and :meth:`step` frame by frame (same skeleton layout).
    """

    def __init__(
        self,
        calibration: Calibration,
        correspondence: Correspondence,
        joint_index: list[int],
        num_joints: int,
        fps: float,
        config: RetargetConfig = RetargetConfig(),
        g1: G1 | None = None,
        source: str = "<stream>",
    ):
        self.g1 = g1 or load_g1()
        self.config = config
        self.calib = calibration
        self.corr = correspondence
        self.table: tuple[BodyTarget, ...] = correspondence.targets()
        self.joint_index = list(joint_index)
        self.num_joints = num_joints
        self.fps = float(fps)
        self.dt = 1.0 / self.fps
        self.source = source
        # The floor is in the IK model: the feet's capsules are kept above it by a collision limit in the QP.
        self.model = self.g1.model(actuators="none", floor=True, self_collisions=True)
        self.geometry = G1Geometry.of(self.g1, self.model, self.table)
        self.builder = TargetBuilder(
            self.table,
            self.geometry,
            calibration,
            self.fps,
            contact_height=config.contact_height,
            contact_speed=config.contact_speed,
            floor_margin=config.floor_margin,
            clearance_deadband=config.clearance_deadband,
            support_softness=config.support_softness,
            moving_clearance=config.moving_clearance,
            moving_clearance_time=config.moving_clearance_time,
        )
        self._qadr = self.g1.qpos_joint_addresses(self.model)
        self._body_ids = np.array([self.model.body(t.body).id for t in self.table])
        self._scored = np.array([t.pos > 0 for t in self.table])
        self._feet = [self.builder.index[f] for f in FEET]
        self.configuration = mink.Configuration(self.model)
        self._tasks: list[tuple[int, mink.FrameTask]] = []
        for k, t in enumerate(self.table):
            if t.pos > 0 or t.rot > 0:
                # Without human rotations only the pelvis, torso and feet have a defined frame (limb twist is not).
                defined = calibration.has_rotations or t.frame in ("pelvis", "torso") or str(t.frame).endswith("_foot")
                rot = t.rot if defined else 0.0
                self._tasks.append((k, mink.FrameTask(t.body, "body", position_cost=t.pos, orientation_cost=rot)))
        posture_cost = np.full(self.model.nv, config.posture_cost)
        for j in ("waist_yaw_joint", "waist_roll_joint", "waist_pitch_joint"):
            posture_cost[self.model.jnt_dofadr[self.model.joint(j).id]] = config.waist_posture_cost
        self._posture = mink.PostureTask(self.model, cost=posture_cost)
        self._home = np.zeros(self.model.nq)
        self._home[:7] = self.g1.default_qpos()[:7]
        self._home[self._qadr] = self.g1.default_joint_pos
        self._posture.set_target(self._home)
        self.tasks = [task for _, task in self._tasks] + [self._posture]
        self.limits: list[mink.Limit] = [mink.ConfigurationLimit(self.model)]
        self.first_limits = list(self.limits)
        if config.velocity_limits:
            velocities = {j: config.velocity_scale * G1_VELOCITY_LIMITS[_motor_key(j)] for j in self.g1.joint_names}
            self.limits.append(mink.VelocityLimit(self.model, velocities))
        # The outermost capsules of each sole bound it: the inner ones never touch first (and cost QP rows).
        feet = [f"{s}_foot{i}_collision" for s in ("left", "right") for i in FLOOR_CAPSULES]
        # Feet above the floor and arms off the body, as QP constraints (mink's collision avoidance: a bound on the
        # approach velocity of each geom pair near contact).
        groups = []
        if config.floor_limit:
            groups.append(([(feet, ["floor"])], config.floor_clearance, 0.03, 0.85))
        if config.collision_avoidance:
            arms = [f"{s}_{g}" for s in ("left", "right") for g in ARM_GEOMS]
            # Arms brake early and gently (a low gain over a wide band): an arm stopped hard at the body jerks.
            groups.append(
                ([(arms, list(BODY_GEOMS))], config.collision_margin, config.collision_band, config.collision_gain)
            )
        for pairs, margin, band, gain in groups:
            limit = mink.CollisionAvoidanceLimit(
                self.model,
                pairs,
                gain=gain,
                minimum_distance_from_collisions=margin,
                collision_detection_distance=margin + band,
            )
            self.limits.append(limit)
            self.first_limits.append(limit)
        self.lock = ContactLock(self.fps, config.release_time)
        self.smoother = Smoother(gaussian_kernel(config.smooth_time * self.fps))
        #: Frames a stream answers late: step() on frame t returns frame t - lookahead (flush() the last ones).
        self.lookahead = self.smoother.half
        self.report: RetargetReport | None = None
        self.residuals: np.ndarray | None = None
        self.reset()

    # -- construction ----------------------------------------------------------------------------------------------

    @classmethod
    def for_motion(
        cls,
        motion: HumanMotion,
        skeleton: str | None = None,
        mapping: str | Path | None = None,
        height: float | None = None,
        config: RetargetConfig = RetargetConfig(),
        g1: G1 | None = None,
    ) -> Retargeter:
        """A retargeter calibrated on ``motion`` (preset ``skeleton`` or ``mapping`` file; stature ``height`` in
        metres, estimated from the skeleton when None)."""
        source = str(motion.provenance.get("path", motion.name))
        check_finite(motion, source)
        corr = resolve(skeleton, mapping, motion.provenance)
        frames = HumanFrames.of(motion, corr)
        calib = calibrate(motion, frames, corr.targets(), corr, height)
        indices = HumanFrames.indices(motion, corr)
        return cls(calib, corr, indices, motion.num_joints, motion.fps, config, g1, source)

    def reset(self) -> None:
        """Start a new sequence: the next :meth:`step` is a first frame."""
        self._prev: np.ndarray | None = None
        self._frame = 0
        self._received = 0
        self.lock.reset()
        self.smoother.reset()

    # -- one frame ---------------------------------------------------------------------------------------------------

    def step(self, positions: np.ndarray, rotations: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Retarget one frame given in the calibrated skeleton's layout: ``positions`` (J, 3) metres Z up,
        ``rotations`` (J, 4) w-first (None for positions-only sources).

        Returns the G1 qpos (36,) (root position, root quaternion w-first, 29 joints in the G1 order) and per-body
        position residuals (B,) in metres, for frame t - :attr:`lookahead` (None while the smoothing window fills;
        :meth:`flush` answers the last frames at the end of a sequence)."""
        positions = np.asarray(positions, dtype=np.float64)
        if positions.shape != (self.num_joints, 3):
            raise RetargetError(
                f"{self.source}: a frame of {self.num_joints} joints (J, 3) expected, got {positions.shape}"
            )
        P = positions[self.joint_index]
        if not np.isfinite(P).all():
            raise RetargetError(
                f"{self.source}: frame {self._received}: non-finite joint positions. Fix: repair the take"
            )
        Q = None
        if self.calib.has_rotations:
            if rotations is None:
                raise RetargetError(f"{self.source}: this retargeter was calibrated with rotations; pass them")
            Q = np.asarray(rotations, dtype=np.float64)[self.joint_index]
            if not np.isfinite(Q).all():
                raise RetargetError(f"{self.source}: frame {self._received}: non-finite joint rotations")
        self._received += 1
        smoothed = self.smoother.push(P, Q)
        return None if smoothed is None else self._frame_targets(*smoothed)

    def flush(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The results of the last :attr:`lookahead` frames of a sequence (then :meth:`reset` for a new one)."""
        return [self._frame_targets(p, q) for p, q in self.smoother.flush()]

    def _frame_targets(self, P: np.ndarray, Q: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        prev = P if self._prev is None else self._prev
        targets = self.builder(P[None], None if Q is None else Q[None], prev)
        self._prev = P
        return self._solve(targets.pos[0], mat_to_quat(targets.rot[0]), targets.contact[0], targets.toe_xy[0])

    def _solve(
        self, pos: np.ndarray, quats: np.ndarray, contact: np.ndarray, toe_xy: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Contact locking, then the IK for one frame (the shared core of :meth:`step` and :meth:`retarget`)."""
        pos = pos.copy()
        if self.config.contact_lock:
            pos[self._feet, :2] = self.lock.apply(pos[self._feet, :2], contact, toe_xy)
        for k, task in self._tasks:
            task.transform_target_to_world = SE3(wxyz_xyz=np.concatenate([quats[k], pos[k]]))
        conf = self.configuration
        if self._frame == 0:
            q = self._home.copy()
            q[:3] = pos[self.builder.index["pelvis"]]
            q[3:7] = quats[self.builder.index["pelvis"]] * [1, 0, 0, 1]  # yaw (approximately) of the target only
            q[3:7] /= np.linalg.norm(q[3:7])
            conf.update(q)
            iterations, limits = self.config.first_frame_iterations - self.config.extra_iterations, self.first_limits
        else:
            iterations, limits = self.config.iterations, self.limits
        for i in range(iterations + self.config.extra_iterations):
            if i >= iterations:
                # Extra steps only while a foot is off its target: contacts are what a few mm spoil (penetration,
                # floating, skating); the limbs are fine after the fixed steps.
                miss = np.linalg.norm(conf.data.xpos[self._body_ids[self._feet]] - pos[self._feet], axis=1)
                if miss.max() <= self.config.foot_tolerance:
                    break
            v = mink.solve_ik(conf, self.tasks, self.dt, self.config.solver, damping=self.config.damping, limits=limits)
            conf.integrate_inplace(v, self.dt)
        self._frame += 1
        residual = np.linalg.norm(conf.data.xpos[self._body_ids] - pos, axis=1)
        return conf.data.qpos.copy(), residual

    # -- a whole motion ----------------------------------------------------------------------------------------------

    def retarget(self, motion: HumanMotion, progress: bool = False) -> MotionClip:
        """The G1 clip of ``motion`` (same skeleton as calibrated). Sets :attr:`report` and :attr:`residuals`."""
        source = str(motion.provenance.get("path", motion.name))
        check_finite(motion, source)
        if motion.num_joints != self.num_joints:
            raise RetargetError(
                f"{source}: {motion.num_joints} joints, but this retargeter was calibrated on {self.num_joints}"
            )
        frames = HumanFrames(motion.positions[:, self.joint_index], None)
        if self.calib.has_rotations:
            if motion.rotations is None:
                raise RetargetError(f"{source}: this retargeter was calibrated with rotations; the motion has none")
            frames.rotations = motion.rotations[:, self.joint_index]
        if abs(motion.fps - self.fps) > 1e-9:
            raise RetargetError(f"{source}: motion at {motion.fps} fps, retargeter built for {self.fps} fps")
        P, Q = smooth_sequence(self.smoother.kernel, frames.positions, frames.rotations)
        targets = self.builder(P, Q, P[0])
        quats = mat_to_quat(targets.rot)
        self.reset()
        T = len(frames)
        qpos = np.empty((T, self.model.nq))
        residuals = np.empty((T, len(self.table)))
        steps = range(T)
        if progress:
            from tqdm import tqdm

            steps = tqdm(steps, desc=f"retarget {Path(source).name}", unit="frame", leave=False)
        for t in steps:
            qpos[t], residuals[t] = self._solve(targets.pos[t], quats[t], targets.contact[t], targets.toe_xy[t])
        self.residuals = residuals
        return self.clip_from(motion, qpos, residuals, targets.contact)

    def clip_from(
        self, motion: HumanMotion, qpos: np.ndarray, residuals: np.ndarray, contact: np.ndarray | None = None
    ) -> MotionClip:
        """A clip with provenance from stacked :meth:`step` outputs (T, 36) and residuals (T, B)."""
        source = str(motion.provenance.get("path", motion.name))
        scored = np.where(self._scored, residuals, 0.0)
        worst = scored.argmax(axis=1)
        residual_mm = 1000.0 * scored.max(axis=1)
        threshold_mm = 1000.0 * self.config.residual_threshold
        flagged = [int(t) for t in np.flatnonzero(~(residual_mm <= threshold_mm))]  # NaN counts as flagged
        self.report = RetargetReport(
            source=source,
            frames=len(qpos),
            threshold_mm=threshold_mm,
            residual_mm=residual_mm,
            worst_body=[self.table[k].body for k in worst],
            flagged=flagged,
        )
        if flagged:
            warnings.warn(self.report.describe(), RetargetWarning, stacklevel=3)
        quat = qpos[:, 3:7] / np.linalg.norm(qpos[:, 3:7], axis=1, keepdims=True)
        prov = {
            "source": "retarget",
            "path": source,
            "performer": motion.provenance.get("performer"),
            "tags": list(motion.provenance.get("tags", [])),
            "retarget": {
                "source_file": source,
                "source_format": motion.provenance.get("format"),
                "skeleton": self.corr.name,
                "scale": round(self.calib.scale, 5),
                "stature_m": round(self.calib.stature, 4),
                "stature_source": self.calib.stature_source,
                "retargeter_version": RETARGETER_VERSION,
                "config_hash": self.config_hash(),
                "config": self.config.as_dict(),
                "calibration": self.calib.as_dict(),
                "status": "ok" if not flagged else "flagged",
                "report": self.report.summary(),
                "residual_mm": [round(float(r), 1) for r in residual_mm],
                "human_contact_fraction": None if contact is None else round(float(np.mean(contact > 0)), 3),
            },
        }
        return MotionClip(motion.name, motion.fps, qpos[:, :3].copy(), quat, qpos[:, self._qadr].copy(), prov)

    def config_hash(self) -> str:
        return config_hash(
            self.config.as_dict(), self.corr.as_dict(), {"version": RETARGETER_VERSION, "robot": str(self.g1.xml_path)}
        )


def check_finite(motion: HumanMotion, source: str) -> None:
    """A RetargetError naming the file and the first frames with NaN or inf positions or rotations."""
    bad = ~np.isfinite(motion.positions).all(axis=(1, 2))
    if motion.rotations is not None:
        bad |= ~np.isfinite(motion.rotations).all(axis=(1, 2))
    if bad.any():
        frames = np.flatnonzero(bad)
        raise RetargetError(
            f"{source}: {len(frames)} frame(s) with NaN or inf joint values (first: {', '.join(map(str, frames[:5]))})."
            " Fix: repair or cut those frames before retargeting"
        )


def retarget(
    motion: HumanMotion,
    skeleton: str | None = None,
    mapping: str | Path | None = None,
    height: float | None = None,
    fps: float | None = None,
    config: RetargetConfig = RetargetConfig(),
    g1: G1 | None = None,
    progress: bool = False,
) -> tuple[MotionClip, RetargetReport]:
    """Retarget a whole motion (resampled to ``fps`` first when given): the clip and its report."""
    if fps is not None and abs(fps - motion.fps) > 1e-9:
        motion = motion.resample(fps)
    rt = Retargeter.for_motion(motion, skeleton, mapping, height, config, g1)
    clip = rt.retarget(motion, progress=progress)
    assert rt.report is not None
    return clip, rt.report


def retarget_file(
    path: str | Path,
    skeleton: str | None = None,
    mapping: str | Path | None = None,
    height: float | None = None,
    fps: float | None = None,
    config: RetargetConfig = RetargetConfig(),
    g1: G1 | None = None,
    progress: bool = False,
    src_fps: float | None = None,
    **read_options,
) -> tuple[MotionClip, RetargetReport]:
    """Read a mocap file (:func:`~humanoid_gpt.governance.mocap.read_mocap`; ``src_fps`` is the rate of a file that
    stores none) and retarget it (resampled to ``fps`` when given)."""
    motion = read_mocap(path, src_fps, **read_options)
    return retarget(motion, skeleton, mapping, height, fps, config, g1, progress)


def write_result(clip: MotionClip, report: RetargetReport, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``<out_dir>/<name>.npz`` (our clip format, provenance included) and ``<name>.retarget.json`` (the report
    and per-frame residuals). A flagged clip is written too, its status "flagged" in both, never as good."""
    import json

    from humanoid_gpt.io_utils import write_text_atomic
    from humanoid_gpt.motion.io import save_clip

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    npz = save_clip(clip, out / f"{clip.name}.npz")
    info = {
        **report.summary(),
        "status": "ok" if report.ok else "flagged",
        "flagged": report.flagged,
        "description": report.describe(),
        "residual_mm": [round(float(r), 1) for r in report.residual_mm],
        "worst_body": report.worst_body,
        "retarget": {k: v for k, v in clip.provenance.get("retarget", {}).items() if k != "residual_mm"},
    }
    path = out / f"{clip.name}.retarget.json"
    write_text_atomic(path, json.dumps(info, indent=1, default=str))
    return npz, path


def retarget_to(
    sources: list[str | Path],
    out_dir: str | Path,
    skeleton: str | None = None,
    mapping: str | Path | None = None,
    height: float | None = None,
    fps: float | None = None,
    config: RetargetConfig = RetargetConfig(),
    g1: G1 | None = None,
    progress: bool = False,
    src_fps: float | None = None,
) -> list[dict]:
    """Retarget every mocap file in ``sources`` (files, or folders searched recursively for .bvh, .amc, .npy, .npz)
    into ``out_dir`` (:func:`write_result`): read with ``src_fps`` as the rate of files that store none, resampled to
    ``fps`` when given. One bad file does not stop the others: each gets a record ``{"path", "status": "ok" |
    "flagged" | "error", "message", "clip", "report"}`` (the last two are output paths)."""
    from humanoid_gpt.governance.mocap import MOCAP_SUFFIXES

    files: list[Path] = []
    for src in map(Path, sources):
        if src.is_dir():
            files += sorted(f for f in src.rglob("*") if f.suffix.lower() in MOCAP_SUFFIXES and f.is_file())
        else:
            files.append(src)
    g1 = g1 or load_g1()
    results = []
    for path in files:
        try:
            clip, report = retarget_file(path, skeleton, mapping, height, fps, config, g1, progress, src_fps)
        except (HGPTError, FileNotFoundError, ValueError) as e:
            results.append({"path": str(path), "status": "error", "message": str(e), "clip": None, "report": None})
            continue
        npz, info = write_result(clip, report, out_dir)
        status = "ok" if report.ok else "flagged"
        results.append(
            {"path": str(path), "status": status, "message": report.describe(), "clip": str(npz), "report": str(info)}
        )
    return results
