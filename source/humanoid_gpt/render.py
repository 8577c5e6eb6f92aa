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
    model = g1.model(actuators="none", floor=True)
    model.vis.global_.offwidth = max(width, model.vis.global_.offwidth)
    model.vis.global_.offheight = max(height, model.vis.global_.offheight)
    data = mujoco.MjData(model)
    adr = g1.qpos_joint_addresses(model)
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_TRACKING
    cam.trackbodyid = model.body("pelvis").id
    cam.distance, cam.elevation, cam.azimuth = 2.6, -12.0, 135.0
    frames = np.empty((clip.num_frames, height, width, 3), dtype=np.uint8)
    with mujoco.Renderer(model, height=height, width=width) as renderer:
        for t in range(clip.num_frames):
            data.qpos[:7] = np.concatenate([clip.root_pos[t], clip.root_quat[t]])
            data.qpos[adr] = clip.joint_pos[t]
            mujoco.mj_forward(model, data)
            renderer.update_scene(data, camera=cam)
            # Shadows and reflections triple the cost of software rendering and add little to a preview.
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = False
            renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = False
            frames[t] = renderer.render()
    return frames


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
