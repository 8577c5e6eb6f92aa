"""Scoring policy files in the MuJoCo harness, each as it was made to run (its actuation and task settings), on the
same windows: what ``hgpt sim2sim eval`` does with the files it is given and the main job's sim2sim stage with its
student, teachers and other labs' released trackers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from humanoid_gpt import settings
from humanoid_gpt.backends import Backend, load_backend
from humanoid_gpt.deploy.policies import PolicySetup, policy_setup
from humanoid_gpt.errors import ConfigError
from humanoid_gpt.mdp.config import TrackingConfig
from humanoid_gpt.motion.clip import MotionClip, clip_windows
from humanoid_gpt.robot.g1 import G1


def harness(setup: PolicySetup, threads: int) -> tuple[Backend, TrackingConfig]:
    """The MuJoCo harness for ``setup``'s policy: the robot under its actuation, and the task settings it was made
    for (another lab's tracker scored under ours would measure the mismatch, not the tracker)."""
    return load_backend("mujoco", g1=setup.g1, threads=threads), TrackingConfig(**setup.task_settings)


def embedded_reference(spec: str, setup: PolicySetup) -> MotionClip:
    """The motion inside a policy file, for policies scored without motion files of their own."""
    if setup.reference is None:
        raise ConfigError(
            f"--policy {spec}: carries no reference motion of its own ({setup.layout} layout); pass --motions FILES"
        )
    return setup.reference()


def policy_labels(specs: Sequence[str]) -> list[str]:
    """Short names for a table: file names, the whole path where two files share a name."""
    names = [Path(s).name for s in specs]
    return [n if names.count(n) == 1 else s for n, s in zip(names, specs, strict=True)]


def policy_motions(
    specs: Sequence[str],
    setups: Sequence[PolicySetup],
    g1: G1,
    motions: Sequence[Path] | None = None,
    fps: float | None = None,
    max_seconds: float | None = None,
    windows: int | None = None,
    window_seconds: float = 10.0,
) -> list[list[MotionClip]]:
    """Each policy's clips: the same ``motions`` files for all (``fps``: the rate of files that store none), else the
    reference inside each policy file; cut to their first ``max_seconds``, then to ``windows`` windows of
    ``window_seconds`` per clip."""
    from humanoid_gpt.motion.io import load_clips

    if motions:
        shared = load_clips(motions, g1, progress=True, fps=fps)
        clips = [shared] * len(setups)
    else:
        clips = [[embedded_reference(spec, setup)] for spec, setup in zip(specs, setups, strict=True)]
    if max_seconds:
        clips = [[c.slice(0, int(max_seconds * c.fps) + 1) for c in cs] for cs in clips]
    if windows:
        clips = [[w for c in cs for w in clip_windows(c, window_seconds, windows)] for cs in clips]
    return clips


def score_policies(
    specs: Sequence[str],
    setups: Sequence[PolicySetup],
    motions: Sequence[Sequence[MotionClip]],
    num_envs: int = 16,
    threads: int = 2,
    seed: int = 0,
    video: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """The paper's metrics of each policy on its clips, by label (:func:`policy_labels`), each result naming its file
    and layout. ``video``: the first clip's episodes side by side, left to right in the given order."""
    labels = policy_labels(specs)
    results, panels = {}, []
    for spec, label, setup, clips in zip(specs, labels, setups, motions, strict=True):
        backend, tracking = harness(setup, threads)
        record = video is not None
        result = backend.evaluate(clips, setup.make, tracking, num_envs, seed, record=record)
        result["policy"] = {"file": str(spec), "layout": setup.layout}
        if record:
            from humanoid_gpt.render import tracking_frames

            panels.append(tracking_frames(setup.g1, result, label))
            if panels[-1] is None:
                log(f"{spec} failed at its first step: its panel of the video is dark")
        results[label] = result
    if any(p is not None for p in panels):
        from humanoid_gpt.render import side_by_side, write_video

        fps = next(p[1] for p in panels if p is not None)
        write_video(side_by_side([p and p[0] for p in panels]), video, fps=fps)
        order = f"left to right: {', '.join(labels)}; " if len(labels) > 1 else ""
        log(f"video: {video} ({order}blue: the reference)")
    return results


def report_scores(results: dict[str, dict], out: Path, shared_windows: int | None = None) -> None:
    """Write :func:`score_policies`' results to ``out`` (JSON) and print them in the paper's layout: one policy per
    clip, several side by side (``shared_windows``: how many identical windows they were scored on; None: each on the
    reference inside its own file)."""
    from humanoid_gpt.metrics import metrics_table, write_report

    if len(results) == 1:
        result = next(iter(results.values()))
        write_report(result, out)
        rows = [((name,), m) for name, m in result["clips"].items()]
        print("\n".join(metrics_table(("clip",), [*rows, ((f"all {len(rows)} clips",), result["aggregate"])])))
    else:
        write_report({"policies": results}, out)
        rows = [((label, r["policy"]["layout"]), r["aggregate"]) for label, r in results.items()]
        shared = f"{shared_windows} identical windows per policy" if shared_windows is not None else None
        print(shared or "each policy's own reference")
        print("\n".join(metrics_table(("policy", "layout"), rows)))
    print(f"-> {out}")


def peer_policies(peers: Sequence[str], g1: G1, log: Callable[[str], None]) -> list[tuple[str, Path, PolicySetup]]:
    """The released trackers of ``peers`` that are present (relative to the data root or absolute), each with its
    label and how the harness runs it; absent ones are logged and skipped."""
    found = []
    for entry in peers:
        path = Path(entry) if Path(entry).is_absolute() else settings.data_root() / entry
        if not path.is_file():
            log(f"peer {entry}: not at {path}, skipped")
            continue
        setup = policy_setup(str(path), g1)
        found.append((f"peer {path.name} ({setup.layout})", path, setup))
    return found


def film_episode(
    backend: Backend,
    make: Callable,
    tracking: TrackingConfig,
    clip: MotionClip,
    g1: G1,
    video: Path,
    title: str,
    seed: int = 0,
) -> dict | None:
    """One episode of the policy ``make`` builds on ``clip``, filmed beside its reference: ``video`` (MP4) and a
    filmstrip beside it (``.png``); returns the episode's metrics, or None when the policy failed at its first step
    (nothing written)."""
    from humanoid_gpt.render import tracking_video, write_filmstrip

    result = backend.evaluate([clip], make, tracking, 1, seed, progress=False, record=True)
    frames = tracking_video(g1, result, video, title)
    if frames is None:
        return None
    write_filmstrip(frames, video.with_suffix(".png"))
    return result["aggregate"]
