"""Adaptive AsymGRPO (asymrl.modulation): schedules and the entropy controller by hand, their config
checks, and the trainer's use of them (logged every step, exact on resume; the linear schedule in
test_trainer.py's end-to-end and resume runs)."""

from __future__ import annotations

import json
import math

import pytest
from helpers import run_train

from asymrl.config import ConfigError, build_config
from asymrl.metrics import read_metrics
from asymrl.modulation import entropy_controller_step, exponents_at, scheduled_value


def test_schedules_by_hand():
    assert scheduled_value(0.9, 0.5, 0, 11, "linear") == 0.9
    assert scheduled_value(0.9, 0.5, 5, 11, "linear") == pytest.approx(0.7)
    assert scheduled_value(0.9, 0.5, 10, 11, "linear") == pytest.approx(0.5)
    assert scheduled_value(0.9, 0.5, 99, 11, "linear") == pytest.approx(0.5)      # held after the end
    assert scheduled_value(0.0, 1.0, 5, 11, "cosine") == pytest.approx(0.5)
    assert scheduled_value(0.0, 1.0, 2, 11, "cosine") == pytest.approx(0.5 * (1 - math.cos(math.pi * 0.2)))
    with pytest.raises(ValueError, match="unknown schedule shape"):
        scheduled_value(0, 1, 0, 2, "exp")


def test_entropy_controller_by_hand():
    assert entropy_controller_step(0.9, 0.25, 0.30, 2.0, 0.0, 2.0) == pytest.approx(1.0)   # below target: up
    assert entropy_controller_step(0.9, 0.40, 0.30, 2.0, 0.0, 2.0) == pytest.approx(0.7)   # above: down
    assert entropy_controller_step(1.95, 0.0, 0.30, 2.0, 0.0, 2.0) == 2.0                   # kept in range
    assert entropy_controller_step(0.1, 1.0, 0.30, 2.0, 0.0, 2.0) == 0.0


def test_exponents_at():
    start = {"alpha_pos": 0.9, "alpha_neg": 0.4}
    assert exponents_at(3, 10, "constant", start, {}, None) == start
    assert exponents_at(9, 10, "linear", start, {"alpha_pos": 0.5}, None) == pytest.approx({"alpha_pos": 0.5, "alpha_neg": 0.4})
    assert exponents_at(0, 10, "entropy_target", start, {}, None) == start
    assert exponents_at(5, 10, "entropy_target", start, {}, {"alpha_pos": 1.2}) == {"alpha_pos": 1.2, "alpha_neg": 0.4}


@pytest.mark.parametrize("values,message", [
    ({"algorithm.alpha_schedule": "linear"}, "linear needs algorithm.alpha_pos_end or alpha_neg_end"),
    ({"algorithm.alpha_schedule": "linear", "algorithm.estimator": "grpo", "algorithm.alpha_pos_end": 0.5},
     "algorithm.alpha_pos_end: estimator 'grpo' has no alpha_pos"),
    ({"algorithm.alpha_schedule": "entropy_target", "algorithm.estimator": "neg_only", "algorithm.target_entropy": 0.3},
     "entropy_target moves alpha_pos, which estimator 'neg_only' does not have"),
    ({"algorithm.alpha_schedule": "entropy_target"}, "algorithm.target_entropy: entropy_target needs a target > 0, got None"),
    ({"algorithm.alpha_schedule": "entropy_target", "algorithm.target_entropy": 0.3, "algorithm.alpha_pos_range": [1.0, 0.5]},
     r"algorithm.alpha_pos_range: expected \[low, high\]"),
    ({"algorithm.target_entropy": 0.3}, "only used with an alpha_schedule"),
    ({"algorithm.alpha_schedule": "exponential"}, "algorithm.alpha_schedule: 'exponential' is not allowed"),
])
def test_bad_modulation_settings_are_named(values, message):
    with pytest.raises(ConfigError, match=message):
        build_config(values)


def test_the_entropy_controller_and_dynamic_sampling_resume_exactly(tmp_path):
    """alpha+ follows the controller rule; stopped after step 2 and resumed, step 3 repeats the
    straight run exactly: the controller's value, and dynamic sampling's rounds of fresh prompts
    (one pair of runs for both: each is a trainer start-up or two)."""
    settings = ["eval.every_steps=0", "eval.at_start=false", "train.save_every=1", "algorithm.estimator=asymgrpo",
                "algorithm.alpha_schedule=entropy_target", "algorithm.target_entropy=5.0", "algorithm.alpha_controller_rate=0.1",
                "algorithm.dynamic_sampling=true", "algorithm.max_generation_rounds=3"]
    run_train(tmp_path / "straight", "train.total_steps=3", *settings)
    straight = [r for r in read_metrics(tmp_path / "straight" / "metrics.jsonl") if "alpha/pos" in r]
    assert straight[0]["alpha/pos"] == 0.9
    for before, after in zip(straight, straight[1:]):  # alpha+ <- alpha+ + rate (target - entropy), in [0, 2]
        assert after["alpha/pos"] == pytest.approx(min(2.0, before["alpha/pos"] + 0.1 * (5.0 - before["entropy/all"])))
    assert straight[2]["alpha/pos"] > 0.9                        # entropy far below the target: alpha+ rises
    assert any(r["time/generation_rounds"] > 1 for r in straight)  # dynamic sampling drew more prompts
    run_train(tmp_path / "resumed", "train.total_steps=2", *settings)
    run_train(tmp_path / "resumed", "train.total_steps=3", *settings)
    resumed = [r for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl") if "alpha/pos" in r]
    assert [r["alpha/pos"] for r in resumed] == [r["alpha/pos"] for r in straight]
    keys = ("reward/accuracy", "groups/evicted_frac", "time/generation_rounds", "groups/mixed_frac", "actor/pg_loss", "entropy/all")
    assert {k: resumed[2][k] for k in keys} == pytest.approx({k: straight[2][k] for k in keys})
    assert json.loads((tmp_path / "resumed" / "summary.json").read_text())["steps"] == 3
