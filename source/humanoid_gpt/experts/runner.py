"""rsl_rl's OnPolicyRunner with the project's checkpoints: atomic, self-describing, exactly resumable."""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

from rsl_rl.runners import OnPolicyRunner
from rsl_rl.utils.logger import Logger

from humanoid_gpt.experts.checkpoint import FORMAT, SCHEMA_VERSION, load_checkpoint
from humanoid_gpt.runs import restore_rng, rng_state, save_checkpoint


class OneLineLogger(Logger):
    """rsl_rl's logger, printing one line per iteration instead of its 40-line block (10,000 lines for a few minutes
    of training): iteration, samples/s, reward, episode length, ETA. Everything else it logs (TensorBoard, W&B) is
    kept. ``timings`` sums the collection and update seconds since a caller last cleared it (learning curves)."""

    def __init__(self, label: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.label = label
        self.timings = {"collect": 0.0, "learn": 0.0}
        self._started: float | None = None

    def log(self, **kw) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            super().log(**kw)
        self.timings["collect"] += kw["collect_time"]
        self.timings["learn"] += kw["learn_time"]
        it, start, total = kw["it"], kw["start_it"], kw["total_it"]
        if self._started is None or it == start:
            self._started = time.time() - kw["collect_time"] - kw["learn_time"]
        samples = self.cfg["num_steps_per_env"] * self.num_envs / (kw["collect_time"] + kw["learn_time"])
        left = (time.time() - self._started) / (it + 1 - start) * (total - it - 1)
        mean = lambda buf: sum(buf) / len(buf) if buf else float("nan")  # noqa: E731
        print(
            f"{self.label} iteration {it + 1}/{total}: {samples:,.0f} samples/s, reward {mean(self.rewbuffer):.2f}, "
            f"episodes {mean(self.lenbuffer):.0f} steps, ETA {int(left) // 60}:{int(left) % 60:02d}",
            flush=True,
        )


class ExpertRunner(OnPolicyRunner):
    """``meta`` (task, obs sizes, robot, config hash) is written into every checkpoint and checked on resume."""

    def __init__(
        self, env, train_cfg: dict, log_dir: str | None, meta: dict, device: str = "cpu", verbose: bool = False
    ) -> None:
        super().__init__(env, train_cfg, log_dir, device)
        self.meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "train_cfg": train_cfg, **meta}
        if not verbose:  # same writers and buffers, one printed line per iteration
            self.logger = OneLineLogger(
                self.meta.get("task", "PPO"),
                log_dir=log_dir,
                cfg=self.cfg,
                env_cfg=self.env.cfg,
                num_envs=self.env.num_envs,
                is_distributed=self.is_distributed,
                gpu_world_size=self.gpu_world_size,
                gpu_global_rank=self.gpu_global_rank,
                device=self.device,
            )

    def save(self, path: str, infos: dict | None = None) -> None:
        payload = self.alg.save()
        payload["iter"] = self.current_learning_iteration
        hgpt = {**self.meta, "rng": rng_state(getattr(self.env, "generator", None))}
        if hasattr(self.env, "snapshot"):  # backends that can: episodes continue exactly on resume
            hgpt["env_state"] = self.env.snapshot()
        payload["infos"] = {**(infos or {}), "hgpt": hgpt}
        save_checkpoint(path, payload)
        self.logger.save_model(path, self.current_learning_iteration)

    def resume(self, path: str | Path, payload: dict | None = None) -> int:
        """Restore weights, optimizer, normalizers, RNG, iteration and (where the backend can snapshot it) the envs'
        episodes from ``path`` (``payload``: its content when the caller has read it already), after checking it was
        made for this task, robot and config. Returns the next iteration to run. Isaac Lab envs restart their
        episodes: their simulator state is not snapshotted."""
        expect = {k: self.meta[k] for k in ("task", "obs_dims", "num_actions", "robot", "config_hash")}
        payload = load_checkpoint(path, expect, payload)
        self.alg.load(payload, None, strict=True)
        saved = payload["infos"]["hgpt"]
        restore_rng(saved["rng"], getattr(self.env, "generator", None))
        if saved.get("env_state") is not None and hasattr(self.env, "restore"):
            self.env.restore(saved["env_state"])
        # rsl_rl stores the iteration it just finished; continue after it rather than repeating it.
        self.current_learning_iteration = payload["iter"] + 1
        return self.current_learning_iteration
