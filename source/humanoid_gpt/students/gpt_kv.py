"""Humanoid-GPT with banded attention and a per-layer key/value cache (kind ``gpt-kv``): a streaming step that is
exact and costs one token's worth of compute (docs/architecture.md, stages 4 and 5).

Every layer attends over its own last W = ``attn_window`` tokens (a banded causal mask), in training and streaming
alike. A layer's keys and values for a token then depend only on tokens of the same band chain, never on a window
that slides away, so cached keys stay valid (the window model's cache cannot: see ``gpt.py``). An action depends on
the last R = n_layer (W - 1) + 1 tokens of its episode (``cfg.kv_receptive_field``).

Streaming cache: a ring buffer (B, n_layer, 2, n_head, W, head_dim) of keys and values; token t of an episode lives in
slot t mod W. ``count`` is the number of earlier tokens of the episode, folded into [W, 2W) once the window is full,
so ``count % W`` is always the slot of the new token. The step reads the ring, never copies it, and returns the new
token's entries; :func:`write_ring` stores them (the host does this for the ONNX graph: copying the whole cache
inside the graph every step costs about 2x at 256 envs).

Rotary positions stay exact without absolute positions: a key enters the ring rotated by its slot (t mod W), and the
query is rotated twice, by its slot r and by r + W; keys in slots above r were written one lap earlier and take the
second. Every score thus sees the true distance, all angles stay below 2W (float32 rotations of large absolute
positions would drift), and training on windows starting at position 0 computes the same numbers.

Training (DAgger): windows of H supervised tokens carry the R - 1 tokens before them as an unsupervised prefix, and
attention never crosses an episode start inside a window, so every supervised position computes exactly what the
streaming step computes (:meth:`KVGPTStudent.loss_mask`).
"""

from __future__ import annotations

import torch

from humanoid_gpt.students.config import StudentConfig
from humanoid_gpt.students.gpt import GPTStudent, apply_rope, rope_tables


def write_ring(ring: torch.Tensor, entries: torch.Tensor, count: torch.Tensor, window: int) -> torch.Tensor:
    """Store ``entries`` (B, L, 2, n_head, head_dim) in slot ``count % window`` of ``ring`` (B, L, 2, n_head, W,
    head_dim), in place; returns ``ring``. The same indexing works on numpy arrays (ONNX Runtime hosts)."""
    ring[torch.arange(ring.shape[0]), :, :, :, count % window] = entries
    return ring


def banded_mask(length: int, window: int, first: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """True where query i may attend key j: i - window < j <= i, and (with ``first`` (B, T), the tokens that begin an
    episode) both in the same episode. (T, T), or (B, 1, T, T) with ``first``."""
    i = torch.arange(length, device=device)
    band = (i[None, :] <= i[:, None]) & (i[None, :] > i[:, None] - window)
    if first is None:
        return band
    episode = first.long().cumsum(dim=1)
    return (band & (episode[:, :, None] == episode[:, None, :]))[:, None]


class KVGPTStudent(GPTStudent):
    """The GPT of ``gpt.py`` (same blocks, same parameter names) with banded attention and a key/value ring cache."""

    uses_episode_starts = True

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__(cfg)
        head_dim, w = cfg.n_embd // cfg.n_head, cfg.attn_window
        # Training windows: H supervised tokens after a burn-in of R - 1 (longer inputs extend the table on demand).
        cos, sin = rope_tables(cfg.context + self.training_overlap(), head_dim, cfg.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        cos, sin = rope_tables(2 * w, head_dim, cfg.rope_base)  # streaming angles: slot r and r + W
        self.register_buffer("ring_cos", cos, persistent=False)
        self.register_buffer("ring_sin", sin, persistent=False)

    # Training ---------------------------------------------------------------------------------------------------------

    def training_overlap(self) -> int:
        return self.cfg.kv_receptive_field - 1

    def loss_mask(self, first: torch.Tensor) -> torch.Tensor:
        """Positions whose whole receptive field lies in the window or reaches back to their episode's start (then
        they compute exactly the streaming action), excluding the burn-in prefix (supervised in the window before)."""
        length = first.shape[1]
        pos = torch.arange(length, device=first.device)
        started_inside = first.long().cumsum(dim=1) > 0
        exact = started_inside | (pos >= self.cfg.kv_receptive_field - 1)[None]
        return exact & (pos >= length - self.cfg.context)[None]

    def forward(self, tokens: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, obs_dim) -> (B, T, num_actions) for any T; ``first`` (B, T) keeps episodes in the window apart."""
        return self.sequence(self.normalizer(tokens), first)

    def sequence(self, x: torch.Tensor, first: torch.Tensor | None = None) -> torch.Tensor:
        t = x.shape[1]
        if t > self.rope_cos.shape[0]:
            cos, sin = rope_tables(t, self.cfg.n_embd // self.cfg.n_head, self.cfg.rope_base)
            self.rope_cos, self.rope_sin = cos.to(x.device), sin.to(x.device)
        mask = banded_mask(t, self.cfg.attn_window, first, x.device)
        h = self.drop(self.embed(x))
        for block in self.blocks:
            h = block(h, self.rope_cos[:t], self.rope_sin[:t], mask)
        return self.head(self.ln_f(h))

    # Streaming --------------------------------------------------------------------------------------------------------

    def cache_shape(self) -> tuple[int, ...]:
        cfg = self.cfg
        return (cfg.n_layer, 2, cfg.n_head, cfg.attn_window, cfg.n_embd // cfg.n_head)

    def next_count(self, count: torch.Tensor) -> torch.Tensor:
        w = self.cfg.attn_window
        nxt = count + 1
        return torch.where(nxt >= 2 * w, nxt - w, nxt)  # stays in [W, 2W) once full, keeping count % W the slot

    def step_entries(
        self, x: torch.Tensor, ring: torch.Tensor, count: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One normalized token (B, obs_dim) against the ring -> action (B, A) and the token's keys and values
        (B, n_layer, 2, n_head, head_dim). Reads ``ring``, never writes it."""
        cfg = self.cfg
        w, heads = cfg.attn_window, cfg.n_head
        head_dim, b = cfg.n_embd // heads, x.shape[0]
        slot = count % w
        slots = torch.arange(w, device=x.device)
        age = (slot[:, None] - slots[None, :]) % w  # steps since each slot's token
        history = (age >= 1) & (age <= count[:, None])  # this episode's earlier tokens; the new one is age 0
        lapped = (slots[None, :] > slot[:, None])[:, None]  # written one lap ago: rotate the query by slot + W
        cos_now, sin_now = self.ring_cos[slot][:, None], self.ring_sin[slot][:, None]  # (B, 1, head_dim)
        cos_lap, sin_lap = self.ring_cos[slot + w][:, None], self.ring_sin[slot + w][:, None]
        scale = head_dim**-0.5
        h = self.embed(x.unsqueeze(1))  # (B, 1, C): 3-D so Linear exports as MatMul (what ONNX quantizers rewrite)
        entries = []
        for layer, block in enumerate(self.blocks):
            attn = block.attn
            q, k, v = (z.reshape(b, heads, head_dim) for z in attn.qkv(block.ln_1(h)).split(cfg.n_embd, dim=-1))
            k = apply_rope(k, cos_now, sin_now)
            q_now = apply_rope(q, cos_now, sin_now)
            q_lap = apply_rope(q, cos_lap, sin_lap)
            keys, values = ring[:, layer, 0], ring[:, layer, 1]  # (B, heads, W, head_dim)
            both = torch.stack([q_now, q_lap], dim=2) @ keys.transpose(-1, -2)  # (B, heads, 2, W)
            scores = torch.where(lapped, both[:, :, 1], both[:, :, 0]) * scale
            scores = scores.masked_fill(~history[:, None], float("-inf"))
            own = (q_now * k).sum(-1, keepdim=True) * scale  # the new token attends to itself too
            p = torch.softmax(torch.cat([own, scores], dim=-1), dim=-1)
            y = p[..., :1] * v + (p[..., None, 1:] @ values).squeeze(-2)  # (B, heads, head_dim)
            h = h + attn.proj(y.reshape(b, 1, cfg.n_embd))
            h = h + block.mlp(block.ln_2(h))
            entries.append(torch.stack([k, v], dim=1))
        return self.head(self.ln_f(h))[:, 0], torch.stack(entries, dim=1)

    def step_normalized(self, x, cache, count) -> tuple[torch.Tensor, torch.Tensor]:
        """Writes the new entries into ``cache`` in place (a ring buffer: no per-step copy) and returns it."""
        action, entries = self.step_entries(x, cache, count)
        return action, write_ring(cache, entries, count, self.cfg.attn_window)
