"""DAPO's dynamic sampling in the trainer: only groups whose rewards vary reach the update, more
prompts are drawn round by round, and a resumed run repeats the original exactly."""

from __future__ import annotations

import pytest
import torch
from test_trainer import one_step_in_process, run_train

from asymrl.advantages import informative_groups
from asymrl.config import ConfigError, build_config
from asymrl.metrics import read_metrics


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


def test_dynamic_sampling_resumes_exactly(tmp_path):
    settings = ["eval.every_steps=0", "eval.at_start=false", "train.save_every=1", "algorithm.dynamic_sampling=true",
                "algorithm.max_generation_rounds=3"]
    run_train(tmp_path / "straight", "train.total_steps=3", *settings)
    run_train(tmp_path / "resumed", "train.total_steps=2", *settings)
    run_train(tmp_path / "resumed", "train.total_steps=3", *settings)
    keys = ("reward/accuracy", "groups/evicted_frac", "time/generation_rounds", "groups/mixed_frac", "actor/pg_loss", "entropy/all")
    straight, resumed = ([{k: r.get(k) for k in keys} for r in read_metrics(tmp_path / name / "metrics.jsonl") if "actor/pg_loss" in r]
                         for name in ("straight", "resumed"))
    assert len(straight) == 3 and straight[2] == pytest.approx(resumed[2])
    assert any(r["time/generation_rounds"] > 1 for r in straight)
