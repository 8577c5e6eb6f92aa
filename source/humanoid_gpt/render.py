"""Headless rendering of G1 motions with MuJoCo's offscreen renderer (EGL, software rendering where no GPU)."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np

from humanoid_gpt.io_utils import atomic_write
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1


def render_clip(
    g1: G1, clip: MotionClip, fps: float = 30.0, width: int = 480, height: int = 360, max_seconds: float | None = 10.0
) -> np.ndarray:
    """Frames (N, H, W, 3) uint8 of ``clip`` played kinematically on the G1, camera following the pelvis."""
    clip = clip.resample(fps) if abs(clip.fps - fps) > 1e-9 else clip
    if max_seconds is not None:
        clip = clip.slice(0, int(max_seconds * fps) + 1)
    return render_qpos(g1, clip.qpos(), width=width, height=height)


GHOST_RGBA = (0.35, 0.65, 1.0, 0.35)
"""The reference's colour beside the simulated robot: translucent blue."""


def render_qpos(
    g1: G1,
    qpos: np.ndarray,
    ghost: np.ndarray | None = None,
    captions: list[str] | None = None,
    width: int = 480,
    height: int = 360,
) -> np.ndarray:
    """Frames (N, H, W, 3) uint8 of the G1 at ``qpos`` (N, 36: root position, quaternion w-first, joints), camera
    following the pelvis; with ``ghost`` (N, 36) a translucent second G1 (the reference it tracks), and with
    ``captions`` a line of text per frame (metrics) in the top-left corner."""
    model = g1.model(actuators="none", floor=True)
    model.vis.global_.offwidth = max(width, model.vis.global_.offwidth)
    model.vis.global_.offheight = max(height, model.vis.global_.offheight)
    data, shade = mujoco.MjData(model), mujoco.MjData(model)
    adr = g1.qpos_joint_addresses(model)
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    cam.trackbodyid = model.body("pelvis").id
    cam.distance, cam.elevation, cam.azimuth = 2.6, -12.0, 135.0
    frames = np.empty((len(qpos), height, width, 3), dtype=np.uint8)
    with mujoco.Renderer(model, height=height, width=width) as renderer:
        for t in range(len(qpos)):
            _pose(model, data, adr, qpos[t])
            renderer.update_scene(data, camera=cam)
            if ghost is not None:
                _pose(model, shade, adr, ghost[t])
                scene, first = renderer.scene, renderer.scene.ngeom
                mujoco.mjv_addGeoms(
                    model, shade, mujoco.MjvOption(), mujoco.MjvPerturb(), mujoco.mjtCatBit.mjCAT_DYNAMIC, scene
                )
                for g in range(first, scene.ngeom):
                    scene.geoms[g].rgba[:] = GHOST_RGBA
            # Shadows and reflections triple the cost of software rendering and add little to a preview.
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            frames[t] = renderer.render()
    if captions is not None:
        _caption(frames, captions)
    return frames


def _pose(model: mujoco.MjModel, data: mujoco.MjData, adr: np.ndarray, qpos: np.ndarray) -> None:
    data.qpos[:7] = qpos[:7]
    data.qpos[adr] = qpos[7:]
    mujoco.mj_forward(model, data)


def _caption(frames: np.ndarray, captions: list[str]) -> None:
    from PIL import Image, ImageDraw

    for t, text in enumerate(captions):
        image = Image.fromarray(frames[t])
        ImageDraw.Draw(image).multiline_text((8, 6), text, fill=(255, 255, 255))
        frames[t] = np.asarray(image)


def write_video(frames: np.ndarray, path: str | Path, fps: float) -> Path:
    """Write frames as MP4 (H.264 through imageio-ffmpeg), atomically."""
    import imageio.v3 as iio

    path = Path(path)
    with atomic_write(path) as f:
        iio.imwrite(f, frames, extension=".mp4", fps=fps, codec="libx264", macro_block_size=8)
    return path


def write_filmstrip(frames: np.ndarray, path: str | Path, count: int = 6) -> Path:
    """A PNG of ``count`` frames side by side, spread evenly over the clip."""
    import imageio.v3 as iio

    idx = np.linspace(0, len(frames) - 1, count).astype(int)
    strip = np.concatenate(list(frames[idx]), axis=1)
    with atomic_write(path) as f:
        iio.imwrite(f, strip, extension=".png")
    return Path(path)


def tracking_frames(g1: G1, result: dict, title: str, step: int = 2) -> tuple[np.ndarray, float] | None:
    """Frames of the recorded episode of an evaluation (``evaluate(..., record=True)``): the simulated G1 beside its
    translucent reference, the policy, clip, time and the clip's metrics in the corner; and their rate (fps). The
    recording is popped from ``result`` (arrays do not belong in a JSON report). None when the policy failed at its
    first step. ``step``: control steps per video frame (2: 50 Hz shown at 25 fps, half the rendering, smooth enough
    to judge tracking)."""
    rec = result.pop("recording")
    robot, ghost = rec["robot"][::step], rec["reference"][::step]
    if not len(robot):
        return None
    m = result["clips"][rec["clip"]]
    summary = f"SR {m['sr_percent']:.0f}%  MPKPE {m.get('mpkpe_mm', float('nan')):.0f} mm"
    captions = [f"{title} on {rec['clip']}  t={i * step / rec['fps']:4.1f} s\n{summary}" for i in range(len(robot))]
    return render_qpos(g1, robot, ghost, captions), rec["fps"] / step


def tracking_video(g1: G1, result: dict, path: str | Path, title: str, step: int = 2) -> np.ndarray | None:
    """:func:`tracking_frames` written to ``path`` (MP4); returns the frames, or None (nothing written)."""
    rendered = tracking_frames(g1, result, title, step)
    if rendered is None:
        return None
    write_video(rendered[0], path, fps=rendered[1])
    return rendered[0]


def side_by_side(videos: list[np.ndarray | None]) -> np.ndarray:
    """Episodes of several policies on the same clip as one video, left to right in the given order. An episode that
    ended early (a fall) holds its last frame, dimmed, until the longest ends; a policy that failed at its first step
    (None) is a dark panel, so every policy keeps its place."""
    shown = [v for v in videos if v is not None]
    if not shown:
        raise ValueError("no episode to show: every policy failed at its first step")
    length, (height, width) = max(len(v) for v in shown), shown[0].shape[1:3]
    panels = []
    for v in videos:
        panel = np.full((length, height, width, 3), 24, dtype=np.uint8)
        if v is not None:
            panel[: len(v)] = v
            panel[len(v) :] = v[-1] // 2  # dimmed: the episode is over
        panels.append(panel)
    return np.concatenate(panels, axis=2)
