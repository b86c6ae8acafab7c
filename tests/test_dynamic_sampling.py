"""DAPO's dynamic sampling in the trainer: only groups whose rewards vary reach the update, more
prompts are drawn round by round. (A resumed run repeats the original exactly: tested with the
entropy controller in test_modulation.py, one straight and one stopped-and-resumed run for both.)"""

from __future__ import annotations

import pytest
import torch
from helpers import one_step_in_process

from asymrl.advantages import informative_groups
from asymrl.config import ConfigError, build_config


def test_informative_groups_by_hand():
    rewards = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0, 1.0], [0.5, 0.5, 0.25]])
    assert informative_groups(rewards).tolist() == [True, False, False, True]
    with pytest.raises(ConfigError, match="algorithm.max_generation_rounds: must be >= 1"):
        build_config({"algorithm.max_generation_rounds": 0})


def test_a_step_keeps_only_groups_whose_rewards_vary(tmp_path, monkeypatch):
    seen = one_step_in_process(tmp_path, monkeypatch, "algorithm.dynamic_sampling=true", "algorithm.max_generation_rounds=6",
                               "train.prompts_per_step=8", "train.mini_batch_prompts=8")
    metrics = seen["metrics"]
    rounds = int(metrics["time/generation_rounds"])
    # Every round but the first drew one more batch of 8 prompts from the sampler.
    assert seen["sampler_state"]["position"] == 8 * rounds
    assert 0 < metrics["groups/evicted_frac"] < 1 and rounds > 1      # the tiny policy leaves many groups uniform
    # The batch: 8 groups, mixed ones first; uniform ones only where the rounds ran out.
    assert len(seen["groups"]) == 8 and metrics["groups/mixed_frac"] == pytest.approx(1 - metrics["groups/filled_frac"])
    advantage = seen["rollout_advantage"]
    mixed = (advantage != 0).any(dim=1)            # AsymGRPO: zero advantage exactly on uniform groups
    assert advantage.shape == (8, 4) and mixed.float().mean() == pytest.approx(metrics["groups/mixed_frac"])
    assert mixed.tolist() == sorted(mixed.tolist(), reverse=True)

