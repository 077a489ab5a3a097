"""An independent, plain-torch re-statement of the published QuARF module, used as a reference.

It keeps the published code's structure (module names ``router.route_linear``,
``router.noise_linear``, ``experts.{i}``; a Python loop over groups x experts) and its formula,
with the two fixes needed to use it at all: the noise can be switched off, and hard mode
calls the chosen expert. The tests compare ``quarf_hf.QuARF`` with it, and
``benchmarks/bench_quarf_block.py`` times it as the "reference loop" baseline.
"""

import torch
import torch.nn.functional as F
from torch import nn


class ReferenceRouter(nn.Module):
    def __init__(self, quality_dim, num_experts, num_groups, top_k, noise=False):
        super().__init__()
        self.num_experts, self.num_groups, self.top_k, self.noise = num_experts, num_groups, top_k, noise
        self.route_linear = nn.Linear(quality_dim, num_experts * num_groups)
        self.noise_linear = nn.Linear(quality_dim, num_experts * num_groups)

    def forward(self, q):
        logits = self.route_linear(q)
        if self.noise:
            logits = logits + torch.randn_like(logits) * F.softplus(self.noise_linear(q))
        logits = logits.view(q.shape[0], self.num_groups, self.num_experts)
        top_values, top_indices = logits.topk(self.top_k, dim=-1)
        sparse = torch.full_like(logits, float("-inf")).scatter(-1, top_indices, top_values)
        return F.softmax(sparse, dim=-1), top_indices


class ReferenceQuARF(nn.Module):
    def __init__(self, in_channels, quality_dim=4096, num_experts=4, top_k=4, num_groups=4, mode="soft"):
        super().__init__()
        self.router = ReferenceRouter(quality_dim, num_experts, num_groups, top_k)
        self.num_groups, self.num_experts, self.mode = num_groups, num_experts, mode
        width = in_channels // num_groups
        self.experts = nn.ModuleList(
            nn.Conv2d(width, width, 3, padding=2**i, dilation=2**i) for i in range(num_experts)
        )

    def forward(self, x, q):
        weights, indices = self.router(q)
        outputs = []
        for group, x_group in enumerate(x.chunk(self.num_groups, dim=1)):
            if self.mode == "hard":
                chosen = indices[:, group, 0]
                group_out = torch.zeros_like(x_group)
                for i in range(x.shape[0]):  # the published per-sample loop
                    group_out[i : i + 1] = self.experts[int(chosen[i])](x_group[i : i + 1])
            else:
                group_out = torch.zeros_like(x_group)
                for e, expert in enumerate(self.experts):
                    group_out = group_out + weights[:, group, e].view(-1, 1, 1, 1) * expert(x_group)
            outputs.append(group_out)
        return torch.cat(outputs, dim=1)
