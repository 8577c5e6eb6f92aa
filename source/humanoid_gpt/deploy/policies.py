"""Policies the harness can run. A policy maps the observation TensorDict to actions (N, 29)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from tensordict import TensorDict

from humanoid_gpt.errors import HGPTError
from humanoid_gpt.mdp.actions import actions_for_targets
from humanoid_gpt.motion.clip import MotionClip
from humanoid_gpt.robot.g1 import G1, Actuation
from humanoid_gpt.runs import CheckpointError, CheckpointRefused


class Policy(Protocol):
    def __call__(self, obs: TensorDict) -> torch.Tensor: ...


class ReferencePolicy:
    """Sanity check: PD targets at the next reference joint positions (what a perfect tracker would command open
    loop). It has no balance feedback, so it falls on most motions: a floor any learned policy must beat."""

    def __init__(self, env) -> None:
        self.env = env

    def __call__(self, obs: TensorDict) -> torch.Tensor:
        ref = self.env.ref_next.joint_pos
        if self.env.cfg.action_relative_to_reference:
            return torch.zeros_like(ref)
        return actions_for_targets(ref, self.env.consts)


class ZeroPolicy:
    """Zero actions: PD targets at the default pose (or at the reference, with reference-relative actions)."""

    def __init__(self, num_actions: int = 29) -> None:
        self.num_actions = num_actions

    def __call__(self, obs: TensorDict) -> torch.Tensor:
        return torch.zeros(obs.batch_size[0], self.num_actions)


class TorchScriptPolicy:
    """A TorchScript module taking one observation group (``student`` by default) to actions."""

    def __init__(self, path: str | Path, obs_group: str = "student") -> None:
        path = Path(path)
        if not path.is_file():
            raise HGPTError(f"policy file {path} does not exist")
        try:
            self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except RuntimeError as e:
            raise HGPTError(f"{path}: not a TorchScript policy ({e}); export one with torch.jit.script/trace") from e
        self.obs_group, self.path = obs_group, path

    @torch.no_grad()
    def __call__(self, obs: TensorDict) -> torch.Tensor:
        x = obs[self.obs_group]
        try:
            actions = self.module(x)
        except RuntimeError as e:
            raise HGPTError(
                f"{self.path}: the policy fails on the '{self.obs_group}' observation ({x.shape[-1]} values per env; "
                f"{str(e).splitlines()[0]}); it must map (N, {x.shape[-1]}) to (N, 29) actions"
            ) from e
        if not isinstance(actions, torch.Tensor) or actions.shape != (x.shape[0], 29):
            shape = tuple(actions.shape) if isinstance(actions, torch.Tensor) else type(actions).__name__
            raise HGPTError(f"{self.path}: the policy returns {shape}; it must return (N, 29) actions (N = {len(x)})")
        return actions


class StreamingStudentPolicy:
    """A student run one control step at a time, as on the robot: its cache is reset for envs whose episode just
    started (``env.episode_length_buf == 0``). Subclasses advance the cache with torch or ONNX Runtime."""

    def __init__(self, env, cache_shape: tuple[int, ...]) -> None:
        self.env = env
        self.cache = torch.zeros((env.num_envs, *cache_shape))
        self.count = torch.zeros(env.num_envs, dtype=torch.long)

    def advance(self, obs: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def __call__(self, obs: TensorDict) -> torch.Tensor:
        from humanoid_gpt.students import Student

        Student.reset_state(self.cache, self.count, self.env.episode_length_buf == 0)
        return self.advance(obs["student"].float())


class TorchStudentPolicy(StreamingStudentPolicy):
    """A student checkpoint (``student_<it>.pt``) in PyTorch."""

    def __init__(self, path: str | Path, env) -> None:
        from humanoid_gpt.students.checkpoint import load_student

        self.model, self.meta = load_student(path, env.g1)
        check_policy_task(path, self.meta["tracking"], env)
        super().__init__(env, self.model.cache_shape())

    def advance(self, obs: torch.Tensor) -> torch.Tensor:
        action, self.cache, self.count = self.model.step(obs, self.cache, self.count)
        return action


class ExportedStudentPolicy(StreamingStudentPolicy):
    """A student exported for deployment, run one step at a time by a runtime (:meth:`run`), checked against the env
    through the export's metadata. Graphs whose cache is a ring buffer (``cache_update: ring``, the KV GPT) return
    the new entries, which this host writes in place."""

    def __init__(self, path: str | Path, env, meta: dict) -> None:
        from humanoid_gpt.deploy.onnx import OnnxMetadataError

        if meta["graph"] != "streaming":
            raise OnnxMetadataError(f"{path} holds the {meta['graph']} graph; the harness runs the streaming one")
        if meta["joint_names"] != list(env.g1.joint_names):
            raise OnnxMetadataError(f"{path}: its joint order differs from the robot's ({env.g1.xml_path})")
        check_policy_task(path, meta, env)
        self.ring_window = int(meta["attn_window"]) if meta.get("cache_update") == "ring" else None
        super().__init__(env, tuple(meta["cache_shape"]))

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """The graph's outputs (action, cache or new ring entries, count) for one step's inputs."""
        raise NotImplementedError

    def advance(self, obs: torch.Tensor) -> torch.Tensor:
        from humanoid_gpt.deploy.onnx import stream_step

        # numpy views share memory with self.cache: a ring cache is written in place.
        action, cache, count = stream_step(
            self.run, obs.numpy(), self.cache.numpy(), self.count.numpy(), self.ring_window
        )
        self.cache, self.count = torch.from_numpy(cache).float(), torch.from_numpy(count).long()
        return torch.from_numpy(action).float()


class OnnxStudentPolicy(ExportedStudentPolicy):
    """A streaming ONNX export run by ONNX Runtime on the CPU."""

    def __init__(self, path: str | Path, env, threads: int | None = None) -> None:
        import onnxruntime as ort

        from humanoid_gpt.deploy.onnx import read_onnx_metadata

        meta = read_onnx_metadata(path)
        super().__init__(path, env, meta)
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(None, feeds)


class TensorRTStudentPolicy(ExportedStudentPolicy):
    """A streaming student's TensorRT engine (``hgpt export tensorrt``) run on the GPU, so ``hgpt sim2sim eval
    --policy student.engine`` validates the engine itself. The metadata comes from ``<engine>.json`` beside it."""

    def __init__(self, path: str | Path, env) -> None:
        from humanoid_gpt.deploy.tensorrt import EngineRunner, engine_metadata

        super().__init__(path, env, engine_metadata(path))
        self.runner = EngineRunner(path)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [y.numpy() for y in self.runner.run(feeds)]


def check_policy_task(path, settings: dict, env) -> None:
    """A student acts in one action convention at one control rate, on one observation layout: refuse an env that
    differs, naming the setting."""
    from humanoid_gpt.mdp.observations import STUDENT_LAYOUT

    ours = {
        "control_dt": env.cfg.control_dt,
        "action_relative_to_reference": env.cfg.action_relative_to_reference,
    }
    for key, value in ours.items():
        if settings.get(key) != value:
            raise HGPTError(f"{path}: {key} is {settings.get(key)!r}, the evaluation task uses {value!r}")
    layout = settings.get("obs_layout")
    if layout is not None and [tuple(p) for p in layout] != list(STUDENT_LAYOUT):
        raise HGPTError(f"{path}: its observation layout differs from this code's STUDENT_LAYOUT")


def _student_info(spec: str) -> dict | None:
    """The task settings (``tracking``) and actuation a student file records: a checkpoint's metadata, or an ONNX
    export's or TensorRT engine's; None for other policies."""
    if spec.endswith(".onnx") or spec.endswith(".engine"):
        if spec.endswith(".onnx"):
            from humanoid_gpt.deploy.onnx import read_onnx_metadata as read
        else:
            from humanoid_gpt.deploy.tensorrt import engine_metadata as read
        m = read(spec)
        own = m.get("actuation", "humanoid_gpt") == "humanoid_gpt"  # exports before actuations were recorded: ours
        keys = ("kp", "kd", "effort_limit", "default_joint_pos", "action_scale")
        actuation = None if own else {"name": m["actuation"], **{k: m[k] for k in keys}}
        return {"tracking": m, "actuation": actuation}
    payload = _student_checkpoint(spec)
    if payload is None:
        return None
    return {"tracking": payload["meta"]["tracking"], "actuation": payload["meta"].get("actuation")}


def _student_checkpoint(spec: str) -> dict | None:
    """The payload when ``spec`` is a student checkpoint; None for anything else (TorchScript files are .pt too)."""
    if not spec.endswith(".pt"):
        return None
    from humanoid_gpt.students.checkpoint import read_student_checkpoint

    try:
        return read_student_checkpoint(spec)
    except CheckpointRefused:
        raise  # unsafe to read as anything: never handed on to the TorchScript loader
    except CheckpointError:
        return None


@dataclass(frozen=True)
class PolicySetup:
    """What running a policy file in the harness needs: the robot as the policy drives it, the task settings it was
    made for, and a factory of the policy for an env."""

    g1: G1
    task_settings: dict
    make: Callable[[object], Policy]
    layout: str
    reference: Callable[[], MotionClip] | None = None
    """The reference motion inside the file, for policies that track only that motion; None for the others."""


def policy_setup(spec: str, g1: G1, layout: str | None = None, relative_actions: bool = False) -> PolicySetup:
    """How to run ``spec``: another lab's layout (recognised from the file, or ``layout`` forced) with its own
    actuation, or one of ours (:func:`make_policy`; a student carries its action convention, other policies take
    ``relative_actions``)."""
    from humanoid_gpt.deploy.layouts import identify

    found = identify(spec, layout)
    if found is not None:
        path = Path(spec)
        embedded = found.embedded_reference
        return PolicySetup(
            g1.with_actuation(found.actuation(path, g1)),
            dict(found.task_settings),
            lambda env: found.make_policy(path, env),
            found.name,
            None if embedded is None else lambda: embedded(path, g1),
        )
    info = _student_info(spec)  # read once: the action convention, physics rate and actuation it was made for
    if info is None:
        settings, actuation = {"action_relative_to_reference": relative_actions}, None
    else:
        keys = ("action_relative_to_reference", "physics_dt")
        settings = {k: info["tracking"][k] for k in keys if k in info["tracking"]}
        actuation = Actuation.from_dict(info["actuation"])
    return PolicySetup(g1.with_actuation(actuation), settings, lambda env: make_policy(spec, env), "humanoid-gpt")


def make_policy(spec: str, env) -> Policy:
    """``reference``, ``zero``, a student checkpoint (``.pt``), a streaming student ONNX (``.onnx``), its TensorRT
    engine (``.engine``, on an NVIDIA GPU), or the path of a TorchScript file."""
    if spec == "reference":
        return ReferencePolicy(env)
    if spec == "zero":
        return ZeroPolicy(env.num_actions)
    if spec.endswith(".onnx"):
        return OnnxStudentPolicy(spec, env)
    if spec.endswith(".engine"):
        return TensorRTStudentPolicy(spec, env)
    if _student_checkpoint(spec) is not None:
        return TorchStudentPolicy(spec, env)
    if _is_expert_checkpoint(spec):
        raise HGPTError(
            f"{spec} is an expert checkpoint (privileged observations): evaluate it with `hgpt experts eval "
            f"--checkpoint {spec}`; --policy takes a student checkpoint, a streaming ONNX or a TorchScript file"
        )
    return TorchScriptPolicy(spec)


def _is_expert_checkpoint(spec: str) -> bool:
    from humanoid_gpt.experts.checkpoint import load_checkpoint

    if not spec.endswith(".pt"):
        return False
    try:
        load_checkpoint(spec)
    except CheckpointRefused:
        raise
    except CheckpointError:
        return False
    return True
