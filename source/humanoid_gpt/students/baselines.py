"""The paper's baselines under the student interface: an MLP on the current token, and a TCN (residual causal
dilated convolutions) whose streaming cache is a ring buffer of each layer's recent inputs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from humanoid_gpt.students.base import Student
from humanoid_gpt.students.config import StudentConfig


class MLPStudent(Student):
    """No memory: the action depends on the current token only (its cache is empty)."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__(cfg)
        layers, width = [], cfg.obs_dim
        for hidden in cfg.mlp_hidden:
            layers += [nn.Linear(width, hidden), nn.ELU()]
            width = hidden
        self.net = nn.Sequential(*layers, nn.Linear(width, cfg.num_actions))

    def cache_shape(self) -> tuple[int, ...]:
        return (0,)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def step_normalized(self, x, cache, count) -> tuple[torch.Tensor, torch.Tensor]:
        return self.net(x), cache


class TCNStudent(Student):
    """Input projection, ``len(tcn_dilations)`` residual layers h += GELU(causal_conv(h)), linear action head."""

    def __init__(self, cfg: StudentConfig) -> None:
        super().__init__(cfg)
        c, k = cfg.tcn_channels, cfg.tcn_kernel
        self.inp = nn.Linear(cfg.obs_dim, c)
        self.convs = nn.ModuleList(nn.Conv1d(c, c, k, dilation=d) for d in cfg.tcn_dilations)
        self.head = nn.Linear(c, cfg.num_actions)
        self.history = (k - 1) * max(cfg.tcn_dilations)  # inputs each layer must remember

    def cache_shape(self) -> tuple[int, ...]:
        return (len(self.convs), self.cfg.tcn_channels, self.history)

    def sequence(self, x: torch.Tensor) -> torch.Tensor:
        h = self.inp(x).transpose(1, 2)  # (B, C, T)
        for conv in self.convs:
            pad = (conv.kernel_size[0] - 1) * conv.dilation[0]
            h = h + F.gelu(conv(F.pad(h, (pad, 0))))
        return self.head(h.transpose(1, 2))

    def step_normalized(self, x, cache, count) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.inp(x)  # (B, C)
        new_cache = []
        for layer, conv in enumerate(self.convs):
            ring = torch.cat([cache[:, layer], h.unsqueeze(-1)], dim=-1)  # (B, C, history + 1), newest last
            k, d = conv.kernel_size[0], conv.dilation[0]
            taps = ring[..., self.history - (k - 1) * d :: d]  # the inputs the kernel sees, oldest first
            h = h + F.gelu(torch.einsum("bck,ock->bo", taps, conv.weight) + conv.bias)
            new_cache.append(ring[..., 1:])
        return self.head(h), torch.stack(new_cache, dim=1)
