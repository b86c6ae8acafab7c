"""Runs ``Trainer._advantages`` (the trainer's own estimator call, with the context it gathers) on
each rank's share of a fixed batch of rewards; launched by tests/test_estimator_context.py in one
process or under ``accelerate launch`` with two.

    python tests/estimator_context_worker.py OUT.json ESTIMATOR
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

import torch

from asymrl.config import build_config
from asymrl.trainer import Trainer
from asymrl.update import build_accelerator, release_process_group

PROMPTS, G = 6, 8

if __name__ == "__main__":
    out, estimator = sys.argv[1], sys.argv[2]
    accelerator = build_accelerator(1, 1, 1.0)
    rank, world = accelerator.process_index, accelerator.num_processes
    generator = torch.Generator().manual_seed(7)
    rewards = (torch.rand(PROMPTS, G, generator=generator) < torch.linspace(0.1, 0.9, PROMPTS)[:, None]).float()
    lengths = torch.randint(1, 30, (PROMPTS, G), generator=generator)
    local = slice(rank * PROMPTS // world, (rank + 1) * PROMPTS // world)  # whole groups per rank, as the trainer's
    completions = [SimpleNamespace(response_ids=[0] * int(n)) for n in lengths[local].flatten()]

    def gather(tensor: torch.Tensor) -> torch.Tensor:
        return tensor if world == 1 else accelerator.gather(tensor.to(accelerator.device)).cpu()

    trainer = SimpleNamespace(config=build_config({"algorithm.estimator": estimator}), total_steps=10, _gather=gather)
    advantage = Trainer._advantages(trainer, 3, rewards[local], completions, {})
    everything = gather(advantage)
    if accelerator.is_main_process:
        json.dump({"world": world, "rewards": rewards.tolist(), "advantages": everything.tolist()}, open(out, "w"))
    release_process_group()
