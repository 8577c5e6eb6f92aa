"""The Periodic Autoencoder (DeepPhase, Starke et al. 2022, as the Humanoid-GPT release uses it), its training with
seeds, atomic per-epoch checkpoints and resume, and loading a trained one. See docs/architecture.md (stage 2).

Encoder: 1-D convolutions (features -> ``width`` -> ``channels`` latent curves), batch norm, ELU. Per latent channel
an FFT over the window gives the frequency (power-weighted mean over the non-DC bins, Hz), the amplitude
(2 sqrt(sum power) / N) and the offset (DC / N); a small per-channel linear layer gives the phase (atan2 of its two
outputs). The decoder reconstructs the window from the parametric curves a sin(2 pi (f t + p)) + b alone, so the
four numbers per channel must carry the motion. Inputs are normalised per feature channel with the partition's
statistics, which the model carries as buffers.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from humanoid_gpt.hme.config import INDEX, HMEConfig, HMEError, PAEConfig
from humanoid_gpt.hme.features import FEATURE_DIM, FEATURE_SPEC, gather_windows
from humanoid_gpt.runs import CheckpointError, config_hash, latest_checkpoint, read_payload, save_checkpoint

FORMAT = "hgpt.hme.pae"
SCHEMA_VERSION = 1
PREFIX = "pae"
log = logging.getLogger(__name__)


def fft_params(latent: torch.Tensor, sample_dt: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Frequency (Hz), amplitude and offset of each curve of ``latent`` (B, C, N) sampled every ``sample_dt`` s."""
    n = latent.shape[-1]
    spectrum = torch.fft.rfft(latent, dim=-1)
    power = spectrum.real.square() + spectrum.imag.square()
    freqs = torch.fft.rfftfreq(n, d=sample_dt, device=latent.device, dtype=latent.dtype)[1:]
    ac = power[..., 1:]
    total = ac.sum(-1)
    freq = (ac * freqs).sum(-1) / total.clamp_min(1e-12)
    amp = 2.0 * total.sqrt() / n
    offset = spectrum.real[..., 0] / n
    return freq, amp, offset


def _conv_block(cin: int, cmid: int, cout: int, kernel: int) -> nn.Sequential:
    pad = kernel // 2
    return nn.Sequential(
        nn.Conv1d(cin, cmid, kernel, padding=pad),
        nn.BatchNorm1d(cmid),
        nn.ELU(),
        nn.Conv1d(cmid, cout, kernel, padding=pad),
    )


class PeriodicAutoencoder(nn.Module):
    """``forward(x)`` maps windows (B, D, N), raw features, to (reconstruction in normalised units, parameters)."""

    def __init__(
        self, input_dim: int, frames: int, sample_dt: float, channels: int = 8, width: int = 64, kernel: int = 9
    ) -> None:
        super().__init__()
        self.input_dim, self.frames, self.sample_dt, self.channels = input_dim, frames, sample_dt, channels
        self.encoder = _conv_block(input_dim, width, channels, kernel)
        self.phase = nn.Parameter(torch.randn(channels, 2, frames) / math.sqrt(frames))  # one Linear(N, 2) each
        self.phase_bias = nn.Parameter(torch.zeros(channels, 2))
        self.decoder = _conv_block(channels, width, input_dim, kernel)
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))
        t = (torch.arange(frames, dtype=torch.float32) - (frames - 1) / 2) * sample_dt  # seconds, window-centred
        self.register_buffer("t", t)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(1e-3))  # a channel that never moves must not blow up

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[:, None]) / self.std[:, None]

    def params(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per channel (B, C): ``freq`` (Hz), ``amp``, ``offset``, ``phase`` (cycles) of raw windows ``x``."""
        latent = self.encoder(self.normalize(x))
        freq, amp, offset = fft_params(latent, self.sample_dt)
        v = torch.einsum("bcn,ckn->bck", latent, self.phase) + self.phase_bias
        phase = torch.atan2(v[..., 1], v[..., 0]) / (2 * math.pi)
        return {"freq": freq, "amp": amp, "offset": offset, "phase": phase, "latent": latent}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.params(x)
        arg = 2 * math.pi * (p["freq"][..., None] * self.t + p["phase"][..., None])
        curves = p["amp"][..., None] * torch.sin(arg) + p["offset"][..., None]
        return self.decoder(curves), {**p, "curves": curves}

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """MSE between the reconstruction and the normalised input."""
        recon, _ = self(x)
        return (recon - self.normalize(x)).square().mean()


# Checkpoints ------------------------------------------------------------------------------------------------------


def pae_meta(cfg: PAEConfig, partition: str, clips: list[str], seed: int) -> dict:
    """What a PAE checkpoint records and a resume or a use must match."""
    arch = {k: getattr(cfg, k) for k in ("channels", "width", "kernel")}
    # epochs stay out of the hash: a finished run may be resumed with more epochs.
    training = {k: getattr(cfg, k) for k in ("batch_size", "lr", "weight_decay", "max_windows", "hop")}
    window = {"rate": cfg.rate, "window_frames": cfg.window_frames, "frame_step": cfg.frame_step}
    return {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "features": FEATURE_SPEC,
        "feature_dim": FEATURE_DIM,
        **window,
        "arch": arch,
        "partition": partition,
        "clips": sorted(clips),
        "seed": seed,
        "config_hash": config_hash(window, arch, training, {"partition": partition, "clips": sorted(clips)}, seed),
        "settings_hash": config_hash(window, arch, training, {"partition": partition}, seed),  # clips left out
    }


def check_compatible(meta: dict, cfg: PAEConfig, path: Path | str) -> None:
    """Refuse a PAE made for another feature layout, rate or window: its numbers would mean something else."""
    want = {"features": FEATURE_SPEC, "feature_dim": FEATURE_DIM, "rate": cfg.rate}
    want |= {"window_frames": cfg.window_frames, "frame_step": cfg.frame_step}
    diff = {k: (meta.get(k), v) for k, v in want.items() if meta.get(k) != v}
    if diff:
        said = ", ".join(f"{k} {got!r} (this config: {v!r})" for k, (got, v) in diff.items())
        raise CheckpointError(
            f"{path}: this PAE was made for other features, rate or windows: {said}. Refit it with this config "
            "(hme fit, into a new output folder) or use the config it was made with"
        )


def _meta_of(payload: dict) -> dict | None:
    return payload.get(FORMAT)


def load_pae(path: str | Path, cfg: PAEConfig | None = None) -> tuple[PeriodicAutoencoder, dict]:
    """A trained PAE in eval mode and its metadata; with ``cfg``, refuses one made for other features or rate."""
    payload, meta = read_payload(path, FORMAT, SCHEMA_VERSION, _meta_of)
    if cfg is not None:
        check_compatible(meta, cfg, path)
    sample_dt = meta["frame_step"] / meta["rate"]
    model = PeriodicAutoencoder(meta["feature_dim"], meta["window_frames"], sample_dt, **meta["arch"])
    model.load_state_dict(payload["model"])
    trained = {k: payload.get(k) for k in ("epoch", "steps")} | {"losses": payload.get("losses", [])}
    return model.eval(), {**meta, **trained}


def finished_checkpoint(folder: Path, meta: dict, cfg: PAEConfig) -> Path | None:
    """The latest checkpoint in ``folder`` when it has ``cfg``'s epochs and steps and was made with ``meta``'s
    settings (same clips, or other clips: a finished PAE is kept when the corpus grows, so embeddings stay comparable
    and re-embedding stays incremental; deleting the folder refits it); else None."""
    found = latest_checkpoint(folder, PREFIX) if folder.is_dir() else None
    if found is None:
        return None
    payload, saved = read_payload(found, FORMAT, SCHEMA_VERSION, _meta_of)
    done = payload.get("epoch", 0) >= cfg.epochs and payload.get("steps", 0) >= cfg.min_steps
    if not done or saved.get("settings_hash", saved.get("config_hash")) not in (
        meta["settings_hash"],
        meta["config_hash"],
    ):
        return None
    if saved.get("config_hash") != meta["config_hash"]:
        log.warning(
            "%s: PAE %s was trained on other clips; reusing it (delete %s to refit)", found, meta["partition"], folder
        )
    return found


def train_pae(
    features: torch.Tensor,
    starts: torch.Tensor,
    cfg: PAEConfig,
    folder: Path,
    meta: dict,
    seed: int,
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
) -> Path:
    """Train (or resume) a PAE on windows of ``features`` (T, 74) starting at ``starts`` (W,), writing
    ``pae_<epoch>.pt`` into ``folder`` after every epoch; returns the last checkpoint. It runs ``cfg.epochs`` epochs,
    more when they hold fewer than ``cfg.min_steps`` optimizer steps.

    Resume: the latest checkpoint in ``folder`` is continued when its metadata matches ``meta`` (same data, settings
    and seed), and reused as is when it has all its epochs (also when only the clips changed: a growing corpus keeps
    its PAEs, so re-embedding stays incremental); batches are drawn from a generator seeded by (seed, epoch), so a
    resumed run sees the same batches as an uninterrupted one."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = PeriodicAutoencoder(FEATURE_DIM, cfg.window_frames, cfg.sample_dt, cfg.channels, cfg.width, cfg.kernel)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start_epoch, losses = 0, []
    found = latest_checkpoint(folder, PREFIX)
    if found is not None:
        payload, saved = read_payload(found, FORMAT, SCHEMA_VERSION, _meta_of)
        if saved.get("config_hash") != meta["config_hash"]:
            if finished_checkpoint(folder, meta, cfg) is not None:
                return found
            raise CheckpointError(
                f"{found}: a PAE of other data or settings is in {folder} (config hash {saved.get('config_hash')}, "
                f"this run {meta['config_hash']}); use a new output folder or delete it to refit"
            )
        model.load_state_dict(payload["model"])
        opt.load_state_dict(payload["optimizer"])
        start_epoch, losses = payload["epoch"], list(payload.get("losses", []))
    else:
        # Normalisation from the training frames (every frame the windows touch, once).
        mean, std = features.mean(0), features.std(0)
        model.set_normalization(mean, std)
    if cfg.max_windows is not None and len(starts) > cfg.max_windows:
        keep = torch.randperm(len(starts), generator=generator)[: cfg.max_windows]
        starts = starts[keep.sort().values]
    if len(starts) < 2:
        raise CheckpointError(f"{folder}: {len(starts)} training window(s); a PAE needs at least 2 (longer clips?)")
    batch = min(cfg.batch_size, len(starts))
    steps = len(starts) // batch
    epochs = max(cfg.epochs, math.ceil(cfg.min_steps / steps))
    if found is not None and start_epoch >= epochs:
        return found
    path = found
    bar = None
    if progress:  # one bar over every step left, not one per epoch (a small partition runs hundreds of epochs)
        from tqdm.auto import tqdm

        bar = tqdm(total=(epochs - start_epoch) * steps, desc=f"PAE {meta['partition']}", unit="step", leave=False)
    for epoch in range(start_epoch, epochs):
        model.train()
        order = torch.randperm(len(starts), generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        total = 0.0
        for step in range(steps):
            x = gather_windows(features, starts[order[step * batch : (step + 1) * batch]], cfg)
            loss = model.loss(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
        losses.append(total / max(steps, 1))
        if bar is not None:
            bar.update(steps)
            bar.set_postfix(epoch=f"{epoch + 1}/{epochs}", loss=f"{losses[-1]:.4f}")
        if on_epoch is not None:
            on_epoch(epoch + 1, losses[-1])
        path = folder / f"{PREFIX}_{epoch + 1}.pt"
        save_checkpoint(
            path,
            {
                FORMAT: meta,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "epoch": epoch + 1,
                "steps": (epoch + 1) * steps,
                "losses": losses,
            },
        )
    if bar is not None:
        bar.close()
    if path is None:  # zero epochs: still a usable (untrained) model with the data's normalisation
        path = folder / f"{PREFIX}_0.pt"
        save_checkpoint(path, {FORMAT: meta, "model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 0})
    return path


@torch.inference_mode()
def window_params(model: PeriodicAutoencoder, windows: torch.Tensor, batch: int = 4096) -> np.ndarray:
    """(W, 2C) float32: each window's per-channel amplitude then frequency."""
    out = []
    for i in range(0, len(windows), batch):
        p = model.params(windows[i : i + batch])
        out.append(torch.cat([p["amp"], p["freq"]], dim=1))
    return torch.cat(out).numpy() if out else np.zeros((0, 2 * model.channels), np.float32)


def load_paes(cfg: HMEConfig) -> tuple[list[PeriodicAutoencoder], list[dict]]:
    """The PAEs ``fit`` wrote for ``cfg``, in partition order; refuses ones made for other features or rates."""
    out = cfg.output_dir()
    path = out / INDEX
    if not path.is_file():
        raise HMEError(f"no trained PAEs in {out} ({INDEX} missing): run the fit step first (hme fit CONFIG)")
    index = json.loads(path.read_text())["partitions"]
    models, metas = [], []
    for rel in index.values():
        model, meta = load_pae(out / rel, cfg.pae)  # refuses other features, rates or windows
        models.append(model)
        metas.append(meta)
    return models, metas
