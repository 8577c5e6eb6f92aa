"""rsl_rl's OnPolicyRunner with the project's checkpoints: atomic, self-describing, exactly resumable."""

from __future__ import annotations

from pathlib import Path

from rsl_rl.runners import OnPolicyRunner

from humanoid_gpt.experts.checkpoint import FORMAT, SCHEMA_VERSION, load_checkpoint
from humanoid_gpt.runs import restore_rng, rng_state, save_checkpoint


class ExpertRunner(OnPolicyRunner):
    """``meta`` (task, obs sizes, robot, config hash) is written into every checkpoint and checked on resume."""

    def __init__(self, env, train_cfg: dict, log_dir: str | None, meta: dict, device: str = "cpu") -> None:
        super().__init__(env, train_cfg, log_dir, device)
        self.meta = {"format": FORMAT, "schema_version": SCHEMA_VERSION, "train_cfg": train_cfg, **meta}

    def save(self, path: str, infos: dict | None = None) -> None:
        payload = self.alg.save()
        payload["iter"] = self.current_learning_iteration
        hgpt = {**self.meta, "rng": rng_state(getattr(self.env, "generator", None))}
        if hasattr(self.env, "snapshot"):  # backends that can: episodes continue exactly on resume
            hgpt["env_state"] = self.env.snapshot()
        payload["infos"] = {**(infos or {}), "hgpt": hgpt}
        save_checkpoint(path, payload)
        self.logger.save_model(path, self.current_learning_iteration)

    def resume(self, path: str | Path) -> int:
        """Restore weights, optimizer, normalizers, RNG, iteration and (where the backend can snapshot it) the envs'
        episodes from ``path``, after checking it was made for this task, robot and config. Returns the next
        iteration to run. Isaac Lab envs restart their episodes: their simulator state is not snapshotted."""
        expect = {k: self.meta[k] for k in ("task", "obs_dims", "num_actions", "robot", "config_hash")}
        payload = load_checkpoint(path, expect)
        self.alg.load(payload, None, strict=True)
        saved = payload["infos"]["hgpt"]
        restore_rng(saved["rng"], getattr(self.env, "generator", None))
        if saved.get("env_state") is not None and hasattr(self.env, "restore"):
            self.env.restore(saved["env_state"])
        # rsl_rl stores the iteration it just finished; continue after it rather than repeating it.
        self.current_learning_iteration = payload["iter"] + 1
        return self.current_learning_iteration
