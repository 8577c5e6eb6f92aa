import numpy as np

from humanoid_gpt.render import render_clip


def _robot_pixels(frame: np.ndarray) -> np.ndarray:
    """Bright grey pixels: the G1's silver links (the floor is bluish, the sky black)."""
    x = frame.astype(int)
    return (np.abs(x[..., 0] - x[..., 2]) < 6) & (x.mean(-1) > 90)


def test_render_shows_the_robot_in_the_middle(g1, walk_clip):
    frames = render_clip(g1, walk_clip.slice(0, 10), fps=30.0, width=160, height=120)
    assert frames.shape == (10, 120, 160, 3) and frames.dtype == np.uint8
    grey = _robot_pixels(frames[0])
    # The camera tracks the pelvis: the robot fills the middle columns and none of the edges.
    assert grey[:, 60:100].sum() > 100 and grey[:, :30].sum() == 0 and grey[:, -30:].sum() == 0
