"""Avg@k evaluation through the rollout engine and the reward, on the tiny base policy."""

from __future__ import annotations

import json
import math

import pytest
from transformers import AutoTokenizer

from asymrl.config import Config
from asymrl.prompts import render_prompt
from asymrl.evaluate import mean_and_standard_error, parse_args, evaluate, samples_for
from asymrl.toy.build import ensure_base_policy


def test_mean_and_standard_error():
    mean, error = mean_and_standard_error([1.0, 0.0, 0.5, 0.5])
    assert mean == 0.5 and error == pytest.approx(math.sqrt((0.25 + 0.25) / 3 / 4))
    assert math.isnan(mean_and_standard_error([1.0])[1])


def test_avg_at_k_defaults_follow_the_paper():
    config = parse_args(["--checkpoint", "x", "--samples", "amc23=3"])
    assert [samples_for(b, config) for b in ("math500", "aime24", "aime25", "amc23", "olympiadbench")] == [5, 10, 10, 3, 5]
    assert config.temperature == 0.4 and config.top_p == 1.0
    with pytest.raises(SystemExit):
        parse_args(["--checkpoint", "x", "--samples", "amc23"])


def test_evaluate_the_tiny_policy_on_toy_validation(tmp_path):
    config = parse_args([
        "--checkpoint", str(ensure_base_policy("tiny")), "--benchmarks", "toy:validation", "--samples", "toy:validation=3",
        "--limit", "12", "--max-new-tokens", "64", "--backend", "transformers", "--dtype", "float32", "--device", "cpu",
        "--prompt-template", "{problem}", "--out", str(tmp_path),
    ])
    summary = evaluate(config)
    result = summary["benchmarks"]["toy:validation"]
    assert result["problems"] == 12 and result["avg_at_k"] == 3
    rows = [json.loads(line) for line in (tmp_path / "toy_validation.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(len(r["samples"]) == 3 for r in rows)
    recomputed = sum(sum(s["correct"] for s in r["samples"]) / 3 for r in rows) / 12
    assert result["accuracy"] == pytest.approx(100 * recomputed)
    assert 0 < result["accuracy"] < 100  # the base policy solves some, not all
    assert any(s["extracted"] == r["answer"] for r in rows for s in r["samples"])
    assert json.loads((tmp_path / "summary.json").read_text())["benchmarks"]["toy:validation"]["accuracy"] == result["accuracy"]


def test_the_default_evaluation_prompt_is_the_training_prompt():
    tokenizer = AutoTokenizer.from_pretrained(ensure_base_policy("tiny"))
    evaluation, training = parse_args(["--checkpoint", "x"]), Config().data
    problem = "Compute 12+30."
    prompt = render_prompt(problem, tokenizer, evaluation.prompt_template, evaluation.use_chat_template, evaluation.enable_thinking)
    assert prompt == render_prompt(problem, tokenizer, training.prompt_template, training.use_chat_template, training.enable_thinking)
    assert "final answer within \\boxed{}." in prompt


def test_evaluate_scores_with_the_reward_named_on_the_command_line(tmp_path):
    arguments = ["--checkpoint", str(ensure_base_policy("tiny")), "--benchmarks", "toy:validation", "--samples", "toy:validation=2",
                 "--limit", "3", "--max-new-tokens", "8", "--backend", "transformers", "--dtype", "float32", "--device", "cpu",
                 "--prompt-template", "{problem}", "--out", str(tmp_path), "--reward", "reward_functions:constant"]
    config = parse_args([*arguments, "--reward-kwargs", "value=1"])
    assert config.reward.name == "reward_functions:constant" and config.reward.kwargs == {"value": 1.0}
    with pytest.raises(SystemExit):
        parse_args([*arguments, "--reward-kwargs", "valeu=1"])
    result = evaluate(config)["benchmarks"]["toy:validation"]
    assert result["accuracy"] == 100.0 and result["reward_errors"] == 0 and result["reward_timeouts"] == 0
    rows = [json.loads(line) for line in (tmp_path / "toy_validation.jsonl").read_text().splitlines()]
    assert [s["reward"] for r in rows for s in r["samples"]] == [1.0] * 6
