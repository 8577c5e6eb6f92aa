"""Student model configuration and the named presets (the paper's GPT-S/B/L, their banded key/value-cache variants
``-kv`` and the MLP and TCN baselines; docs/architecture.md, stage 4)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from humanoid_gpt.errors import ConfigError
from humanoid_gpt.mdp.observations import STUDENT_DIM

KINDS = ("gpt", "mlp", "tcn", "gpt-kv")


@dataclass(frozen=True)
class StudentConfig:
    """One student. A token is the student observation (proprioception s_t and reference q_t, STUDENT_LAYOUT)."""

    kind: str = "gpt"
    obs_dim: int = STUDENT_DIM
    num_actions: int = 29
    context: int = 32
    """H: tokens the policy sees (the current one and H-1 before it). 32 steps = 0.64 s at 50 Hz. For ``gpt-kv``
    it is the number of supervised tokens per training window instead (windows also carry a burn-in prefix)."""
    # GPT
    n_layer: int = 7
    n_head: int = 8
    n_embd: int = 256
    dropout: float = 0.0
    rope_base: float = 10000.0
    # GPT with a key/value cache ("gpt-kv"): every layer attends over its last attn_window tokens (a banded mask)
    attn_window: int = 16
    # MLP: hidden widths
    mlp_hidden: tuple[int, ...] = (320, 320, 320)
    # TCN: residual causal dilated convolutions
    tcn_channels: int = 196
    tcn_kernel: int = 2
    tcn_dilations: tuple[int, ...] = (1, 2, 4, 8, 1, 2, 4, 8)

    @property
    def kv_receptive_field(self) -> int:
        """Tokens a ``gpt-kv`` action depends on: each of the n_layer bands reaches attn_window - 1 further back."""
        return self.n_layer * (self.attn_window - 1) + 1

    @property
    def tcn_receptive_field(self) -> int:
        return 1 + (self.tcn_kernel - 1) * sum(self.tcn_dilations)

    def validate(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"student kind {self.kind!r} is not one of {KINDS}")
        if self.context < 1:
            raise ConfigError(f"context length H must be at least 1, not {self.context}")
        if self.kind in ("gpt", "gpt-kv") and (self.n_embd % self.n_head or (self.n_embd // self.n_head) % 2):
            raise ConfigError(f"n_embd {self.n_embd} must split into {self.n_head} heads of even size (for RoPE)")
        if self.kind == "tcn" and self.tcn_receptive_field > self.context:
            # Beyond H the windowed model sees zero padding while a streaming one would see real history.
            raise ConfigError(
                f"the TCN's receptive field ({self.tcn_receptive_field} steps) exceeds the context H={self.context}; "
                "lower the dilations or raise the context"
            )
        if self.kind == "gpt-kv" and self.attn_window < 1:
            raise ConfigError(f"attn_window must be at least 1, not {self.attn_window}")

    def to_dict(self) -> dict:
        d = asdict(self)
        if self.kind != "gpt-kv":
            # Checkpoints of the other kinds keep their pre-"gpt-kv" config, so their runs still resume.
            d.pop("attn_window")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> StudentConfig:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


PRESETS: dict[str, StudentConfig] = {
    # Sizes chosen to match the paper's parameter counts (5.7M, 22.1M, 80.4M; tested within 10%).
    "gpt-s": StudentConfig(kind="gpt", n_layer=7, n_head=8, n_embd=256),
    "gpt-b": StudentConfig(kind="gpt", n_layer=7, n_head=8, n_embd=512),
    "gpt-l": StudentConfig(kind="gpt", n_layer=11, n_head=12, n_embd=768),
    # The same sizes with banded attention and a per-layer key/value cache (exact streaming at O(W) per step; the
    # weights are not interchangeable with the window model's). H = supervised tokens per training window.
    "gpt-s-kv": StudentConfig(kind="gpt-kv", n_layer=7, n_head=8, n_embd=256, attn_window=16),
    "gpt-b-kv": StudentConfig(kind="gpt-kv", n_layer=7, n_head=8, n_embd=512, attn_window=16),
    "gpt-l-kv": StudentConfig(kind="gpt-kv", n_layer=11, n_head=12, n_embd=768, attn_window=16),
    "mlp": StudentConfig(kind="mlp"),  # 3 hidden layers, about 0.25M parameters
    "tcn": StudentConfig(kind="tcn"),  # 8 conv layers, about 0.65M parameters
}


def context_overrides(name: str, context: int | None) -> dict:
    """Fields a preset needs to run at context H: the TCN preset's receptive field (31 steps) needs H >= 31; below
    that it keeps its 8 layers with shorter dilations (1, 1, 2, 2, 1, 1, 2, 4: 16 steps)."""
    return {"tcn_dilations": (1, 1, 2, 2, 1, 1, 2, 4)} if name == "tcn" and context is not None and context < 31 else {}


def preset(name: str, **overrides) -> StudentConfig:
    """A named preset with fields replaced (``context=64``, ...)."""
    key = name.lower()
    if key not in PRESETS:
        raise ConfigError(f"unknown student preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = replace(PRESETS[key], **overrides)
    cfg.validate()
    return cfg
