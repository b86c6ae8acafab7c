"""Evaluation through the rollout engine and the reward: every dataset with its task's reward, prompt
and answer length, a run's checkpoint with the settings the run trained with, flags over both, and
no score at all where prompts and answers do not fit the model."""

from __future__ import annotations

import json
import math
import shutil

import pytest
from transformers import AutoTokenizer

from asymrl import tasks
from asymrl.config import ConfigError, build_config
from asymrl.evaluate import evaluate, main, mean_and_standard_error, parse_args, prepare, samples_for, settings_for
from asymrl.prompts import render_prompt
from asymrl.toy.build import ensure_base_policy

FAST = ["--backend", "transformers", "--device", "cpu"]


def test_mean_and_standard_error():
    mean, error = mean_and_standard_error([1.0, 0.0, 0.5, 0.5])
    assert mean == 0.5 and error == pytest.approx(math.sqrt((0.25 + 0.25) / 3 / 4))
    assert math.isnan(mean_and_standard_error([1.0])[1])


def test_avg_at_k_defaults_follow_the_paper():
    config = parse_args(["--checkpoint", "x", "--samples", "amc23=3"])
    assert config.benchmarks == ["math500", "aime24", "aime25", "amc23", "olympiadbench"]
    assert [samples_for(b, config) for b in config.benchmarks] == [5, 10, 10, 3, 5]
    assert config.temperature == 0.4 and config.top_p == 1.0
    with pytest.raises(SystemExit):
        parse_args(["--checkpoint", "x", "--samples", "amc23"])


@pytest.mark.parametrize("dataset, task, reward, template, max_new_tokens", [
    ("paths", "paths", "paths", "{problem}", 32), ("paths:test", "paths", "paths", "{problem}", 32),
    ("toy", "toy", "math", "{problem}", 64), ("math500", "math", "math", tasks.MATH_PROMPT, 4096),
])
def test_a_dataset_is_evaluated_as_its_task_says(dataset, task, reward, template, max_new_tokens):
    settings = settings_for(dataset, parse_args(["--checkpoint", "x", "--data", dataset]))
    assert (settings.task, settings.reward.name, settings.prompt_template, settings.max_new_tokens) == (task, reward, template, max_new_tokens)
    assert settings.use_chat_template and settings.enable_thinking is None


def test_flags_override_the_task():
    config = parse_args(["--checkpoint", "x", "--data", "paths", "--prompt-template", "Q: {problem}", "--max-new-tokens", "20",
                         "--no-chat-template", "--reward", "reward_functions:constant", "--reward-kwargs", "value=0.5"])
    settings = settings_for("paths", config)
    assert (settings.task, settings.prompt_template, settings.max_new_tokens, settings.use_chat_template) == ("paths", "Q: {problem}", 20, False)
    assert settings.reward.name == "reward_functions:constant" and settings.reward.kwargs == {"value": 0.5}
    with pytest.raises(SystemExit):  # checked against the reward's signature before any sampling
        parse_args(["--checkpoint", "x", "--data", "paths", "--reward", "reward_functions:constant", "--reward-kwargs", "valeu=1"])


def a_run(tmp_path, overrides: dict) -> tuple:
    """A run folder as the trainer leaves it: config.yaml beside best/ (a copy of the paths policy)."""
    config = build_config({"data.train": "paths", "train.output_dir": str(tmp_path / "run"), **overrides})
    run = tmp_path / "run"
    shutil.copytree(ensure_base_policy("paths"), run / "best")
    config.save(run / "config.yaml")
    return config, run


def test_a_runs_checkpoint_is_evaluated_with_the_runs_settings(tmp_path):
    config, run = a_run(tmp_path, {"data.prompt_template": "Go {problem}", "data.enable_thinking": False, "rollout.max_new_tokens": 30,
                                   "reward.name": "reward_functions:constant", "reward.kwargs.value": 0.25})
    evaluation = parse_args(["--checkpoint", str(run / "best")])
    assert evaluation.run_config_path == run / "config.yaml" and evaluation.out == run / "best" / "eval"
    assert evaluation.benchmarks == ["paths:test"]  # the run's task's test split, not the math benchmarks
    settings = settings_for("paths:validation", evaluation)
    assert (settings.prompt_template, settings.enable_thinking, settings.max_new_tokens) == ("Go {problem}", False, 30)
    assert settings.reward.name == "reward_functions:constant" and settings.reward.kwargs == {"value": 0.25}
    # A dataset of another task is evaluated as that task says, not as the run trained.
    assert settings_for("toy", evaluation).prompt_template == "{problem}" and settings_for("toy", evaluation).reward.name == "math"
    # A flag still wins.
    assert settings_for("paths", parse_args(["--checkpoint", str(run / "best"), "--prompt-template", "{problem}"])).prompt_template == "{problem}"


def test_the_evaluation_prompt_is_the_training_prompt_where_the_chat_template_reads_enable_thinking(tmp_path):
    """Qwen3's chat template renders enable_thinking=False (an empty think block) unlike an unset one:
    the run's setting must reach evaluation as it reached training."""
    config, run = a_run(tmp_path, {"data.enable_thinking": False})
    tokenizer = AutoTokenizer.from_pretrained(run / "best")
    tokenizer.chat_template = ("{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}<|assistant|>"
                               "{% if enable_thinking is defined and enable_thinking is false %}NOTHINK{% endif %}")
    problem = "Path a0>b1."
    training = render_prompt(problem, tokenizer, config.data.prompt_template, config.data.use_chat_template, config.data.enable_thinking)
    settings = settings_for("paths", parse_args(["--checkpoint", str(run / "best")]))
    evaluation = render_prompt(problem, tokenizer, settings.prompt_template, settings.use_chat_template, settings.enable_thinking)
    assert evaluation == training and training.endswith("NOTHINK")
    unset = settings_for("paths", parse_args(["--checkpoint", str(ensure_base_policy("paths")), "--out", "x"]))
    assert not render_prompt(problem, tokenizer, unset.prompt_template, unset.use_chat_template, unset.enable_thinking).endswith("NOTHINK")


def test_a_prompt_past_the_models_context_is_an_error_naming_the_template():
    config = parse_args(["--checkpoint", "toy:paths", "--data", "paths", "--out", "x", "--prompt-template", tasks.MATH_PROMPT])
    tokenizer = AutoTokenizer.from_pretrained(ensure_base_policy("paths"))
    with pytest.raises(ConfigError, match=r"longest prompt is \d+ tokens with the prompt template .*Please reason step by step.* "
                                          r"> the model's 64 positions; the task's template is '\{problem\}'"):
        prepare("paths", "validation", config, tokenizer, context=64)
    fitting = prepare("paths", "validation", parse_args(["--checkpoint", "toy:paths", "--data", "paths", "--out", "x"]), tokenizer, context=64)
    assert fitting.longest_prompt + fitting.settings.max_new_tokens <= 64


def test_the_paths_contract_gives_the_base_policys_pass_at_k(tmp_path):
    """``--data paths`` alone: the paths reward and template (with the math verifier and prompt it
    scored 0.0%), on the default backend and the checkpoint's own dtype."""
    summary = main(["--checkpoint", "toy:paths", "--data", "paths", "--split", "validation", "--n", "16", "--limit", "40",
                    "--out", str(tmp_path)])
    assert (summary["task"], summary["reward"], summary["prompt_template"], summary["max_new_tokens"]) == ("paths", "paths", "{problem}", 32)
    assert summary["engine"] == "TransformersEngine" and summary["dtype"] == "float32"  # auto on a CPU; the policy's dtype
    # The base policy's band (pass@1 0.25, pass@8 0.75 on 1,000 problems): far from zero on 40 problems.
    assert 0.1 < summary["pass_at_k"]["1"] < 0.45 and summary["pass_at_k"]["8"] > 0.45
    assert json.loads((tmp_path / "summary.json").read_text())["reward"] == "paths"


def test_evaluate_the_tiny_policy_on_toy_validation(tmp_path):
    config = parse_args(["--checkpoint", "toy:tiny", "--benchmarks", "toy:validation", "--samples", "toy:validation=3",
                         "--limit", "12", "--out", str(tmp_path), *FAST])
    summary = evaluate(config)
    result = summary["benchmarks"]["toy:validation"]
    assert result["problems"] == 12 and result["avg_at_k"] == 3 and (result["task"], result["reward"]) == ("toy", "math")
    rows = [json.loads(line) for line in (tmp_path / "toy_validation.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(len(r["samples"]) == 3 for r in rows)
    recomputed = sum(sum(s["correct"] for s in r["samples"]) / 3 for r in rows) / 12
    assert result["accuracy"] == pytest.approx(100 * recomputed)
    assert 0 < result["accuracy"] < 100  # the base policy solves some, not all
    assert any(s["extracted"] == r["answer"] for r in rows for s in r["samples"])
    assert json.loads((tmp_path / "summary.json").read_text())["benchmarks"]["toy:validation"]["accuracy"] == result["accuracy"]


def test_evaluate_scores_with_the_reward_named_on_the_command_line(tmp_path):
    config = parse_args(["--checkpoint", "toy:tiny", "--benchmarks", "toy:validation", "--samples", "toy:validation=2", "--limit", "3",
                         "--max-new-tokens", "8", "--out", str(tmp_path), "--reward", "reward_functions:constant", "--reward-kwargs", "value=1",
                         *FAST])
    result = evaluate(config)["benchmarks"]["toy:validation"]
    assert result["reward"] == "reward_functions:constant" and result["reward_kwargs"] == {"value": 1.0}
    assert result["accuracy"] == 100.0 and result["reward_errors"] == 0 and result["reward_timeouts"] == 0
    rows = [json.loads(line) for line in (tmp_path / "toy_validation.jsonl").read_text().splitlines()]
    assert [s["reward"] for r in rows for s in r["samples"]] == [1.0] * 6


def test_local_dir_and_no_chat_template(tmp_path):
    """``--local-dir`` finds ``<name>.jsonl`` by short name; ``--no-chat-template`` sends the bare text."""
    from asymrl.data import load_problems

    problems, _ = load_problems("toy", "validation")
    (tmp_path / "mine.jsonl").write_text("".join(json.dumps(p) + "\n" for p in problems[:4]))
    config = parse_args(["--checkpoint", "toy:tiny", "--benchmarks", "mine", "--local-dir", str(tmp_path), "--samples", "mine=1",
                         "--no-chat-template", "--prompt-template", "{problem}", "--max-new-tokens", "64", "--out", str(tmp_path / "out"),
                         *FAST])
    tokenizer = AutoTokenizer.from_pretrained(ensure_base_policy("tiny"))
    dataset = prepare("mine", None, config, tokenizer, context=160)
    assert [p["id"] for p in dataset.problems] == [p["id"] for p in problems[:4]]
    assert dataset.prompts == [p["problem"] for p in problems[:4]]  # no <|user|> around it
    summary = evaluate(config, tokenizer=tokenizer)
    assert summary["benchmarks"]["mine"]["problems"] == 4 and summary["benchmarks"]["mine"]["use_chat_template"] is False
