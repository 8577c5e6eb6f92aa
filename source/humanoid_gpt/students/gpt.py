"""Humanoid-GPT: a causal Transformer over observation tokens (nanoGPT's shape, with pre-norm blocks and rotary
position embeddings); the action at step t attends to the episode's last H tokens.

Streaming keeps the window's token embeddings, right-aligned in a fixed buffer of H-1 slots, and runs the blocks over
[buffer, new token] with the empty slots masked. A per-layer key/value cache would be cheaper but is not exact once
the window slides: a deeper layer's keys for a past token were computed while tokens now outside the window were still
visible (measured: 7e-3 action error on GPT-S after H steps). The buffer is exact, fixed-shape (one ONNX graph for
every step of an episode), and rotary embeddings at positions 0..H-1 give every token its true distance to the query.
The banded variant in ``gpt_kv.py`` (kind ``gpt-kv``) trains each layer on its own sliding window instead, which makes
a per-layer key/value cache exact (docs/architecture.md, stage 4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from humanoid_gpt.students.base import Student
from humanoid_gpt.students.config import StudentConfig


def rope_tables(length: int, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (length, head_dim) for positions 0..length-1, in the rotate-half layout."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inv_freq[None]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (..., T, head_dim) by the angles of positions given by cos/sin (T, head_dim)."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.n_head, self.head_dim = cfg.n_head, cfg.n_embd // cfg.n_head
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.dropout = cfg.dropout

    def _heads(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=-1)
        return tuple(z.view(b, t, self.n_head, self.head_dim).transpose(1, 2) for z in (q, k, v))

    def _merge(self, y: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape
        return self.proj(y.transpose(1, 2).reshape(b, t, -1))

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        """``mask`` (B, 1, T, T), True where a query may attend a key; None means causal. ``last_only``: the output
        of the last token alone (B, 1, C), which attends every key its mask row allows."""
        q, k, v = self._heads(x)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if last_only:
            q, mask = q[:, :, -1:], None if mask is None else mask[..., -1:, :]
        drop = self.dropout if self.training else 0.0
        causal = mask is None and not last_only
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop, is_causal=causal)
        return self._merge(y)


class Block(nn.Module):
    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd),
            nn.GELU(),
            nn.Linear(4 * cfg.n_embd, cfg.n_embd),
            nn.Dropout(cfg.dropout),
        )

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None = None,
        last_only: bool = False,
    ) -> torch.Tensor:
        y = self.attn(self.ln_1(x), cos, sin, mask, last_only)
        x = (x[:, -1:] if last_only else x) + y
        return x + self.mlp(self.ln_2(x))


class GPTStudent(Student):
    """token -> linear embedding -> n_layer pre-norm blocks -> LayerNorm -> linear action head."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__(cfg)
        self.embed = nn.Linear(cfg.obs_dim, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.n_embd)
        self.head = nn.Linear(cfg.n_embd, cfg.num_actions)
        cos, sin = rope_tables(cfg.context, cfg.n_embd // cfg.n_head, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of the residual projections
            if name.endswith("attn.proj.weight") or name.endswith("mlp.2.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / (2 * cfg.n_layer) ** 0.5)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            nn.init.zeros_(module.bias)

    def cache_shape(self) -> tuple[int, ...]:
        return (self.cfg.context - 1, self.cfg.n_embd)

    def _blocks(self, h: torch.Tensor, mask: torch.Tensor | None = None, last_only: bool = False) -> torch.Tensor:
        """The action of every token (B, T, A), or with ``last_only`` of the last one (B, 1, A): a streaming step
        needs every token through all blocks but the last, where only the newest token's query is asked (a tenth of
        GPT-S's step; exact)."""
        t, last = h.shape[1], len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            h = block(h, self.rope_cos[:t], self.rope_sin[:t], mask, last_only and i == last)
        return self.head(self.ln_f(h))

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        return self._blocks(self.drop(self.embed(x)))

    def step_normalized(self, x, cache, count) -> tuple[torch.Tensor, torch.Tensor]:
        length = self.cfg.context
        window = torch.cat([cache, self.embed(x).unsqueeze(1)], dim=1)  # (B, H, C), newest last
        slots = torch.arange(length, device=x.device)
        valid = slots[None, :] >= (length - 1 - count)[:, None]  # the last count+1 slots hold this episode
        causal = slots[None, :] <= slots[:, None]
        # Empty slots attend to themselves only, so they stay finite and no valid token ever reads them.
        mask = (causal & valid[:, None, :]) | torch.eye(length, dtype=torch.bool, device=x.device)
        return self._blocks(window, mask[:, None], last_only=True)[:, -1], window[:, 1:]
