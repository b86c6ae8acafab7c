"""The embedded default: task generator, tokenizer, committed base policy, build determinism."""

from __future__ import annotations

import dataclasses

import json
import re

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

from asymrl.reward import MathVerifier
from asymrl.toy import build as toy_build
from asymrl.toy.task import LEVELS, generate_problems, split_of
from asymrl.toy.tokenizer import build_tokenizer


def test_generator_is_deterministic_and_splits_are_disjoint():
    first = generate_problems(seed=1, n=300)
    assert first == generate_problems(seed=1, n=300)
    assert first != generate_problems(seed=2, n=300)
    assert {p["level"] for p in first} == set(LEVELS)
    validation = generate_problems(seed=3, n=200, split="validation")
    assert all(split_of(p["problem"]) == "validation" for p in validation)
    sft = {p["problem"] for p in generate_problems(seed=4, n=2000, split="sft")}
    assert not sft & {p["problem"] for p in validation}


def test_answers_are_right_and_solutions_end_in_them():
    problems = generate_problems(seed=5, n=400)
    for p in problems:
        text = p["problem"]
        if match := re.fullmatch(r"Compute (\d+)([+-])(\d+)\.", text):
            a, op, b = int(match.group(1)), match.group(2), int(match.group(3))
            assert int(p["answer"]) == (a + b if op == "+" else a - b)
        elif match := re.fullmatch(r"Solve (\d+)x([+-]\d+)=(-?\d+)\.", text):
            a, b, c = int(match.group(1)), int(match.group(2)), int(match.group(3))
            assert a * int(p["answer"]) + b == c
        else:
            numerator, denominator = map(int, re.fullmatch(r"Reduce (\d+)/(\d+)\.", text).groups())
            p_, q_ = map(int, re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", p["answer"]).groups())
            assert numerator * q_ == denominator * p_ and torch.gcd(torch.tensor(p_), torch.tensor(q_)) == 1
    with MathVerifier() as verifier:
        assert verifier.score_batch([p["solution"] for p in problems], [p["answer"] for p in problems]) == [1.0] * len(problems)


def test_tokenizer_round_trips_and_loads_with_autotokenizer(tmp_path):
    tokenizer = build_tokenizer()
    text = "Solve 3x-7=-22. 3x=-22+7=-15. x=-15/3=-5. \\boxed{-5} \\frac{3}{4} (a, b]"
    assert tokenizer.decode(tokenizer(text)["input_ids"]) == text
    tokenizer.save_pretrained(tmp_path)
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    prompt = loaded.apply_chat_template([{"role": "user", "content": "Compute 1+2."}], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|user|>Compute 1+2.<|assistant|>"
    assert loaded(prompt)["input_ids"] == tokenizer(prompt)["input_ids"]
    assert len(loaded(prompt)["input_ids"]) == len("Compute 1+2.") + 2


def test_committed_base_policy_loads_and_is_small():
    policy = toy_build.ensure_base_policy("tiny")
    assert policy == toy_build.ASSETS / "tiny"
    assert (policy / "model.safetensors").stat().st_size <= 5 * 2**20
    model = AutoModelForCausalLM.from_pretrained(policy)
    assert 0.5e6 < sum(p.numel() for p in model.parameters()) < 2e6
    assert model.config.model_type == "llama"


def test_base_policy_accuracy_is_inside_the_intended_band():
    from asymrl.toy.report import measure

    report = measure(toy_build.ensure_base_policy("tiny"), limit=160, group_size=4)
    overall = report["overall"]
    # Neither hopeless nor solved, and most groups give RL a signal on levels 3-4.
    assert 20 <= overall["sampled"] <= 60, overall
    assert 25 <= overall["greedy"] <= 70, overall
    assert overall["mixed_groups"] >= 30, overall
    assert report["levels"]["2"]["mixed_groups"] >= 40, report["levels"]


def test_a_snapshot_is_the_build_stopped_there_bit_for_bit(tmp_path):
    """A deeper-SFT preset is the same run stopped later: its snapshot at a step is, byte for byte,
    the build stopped at that step (the sweep's paths_sft* policies rest on it)."""
    assert toy_build.PRESETS["paths_sft2000"] == dataclasses.replace(toy_build.PRESETS["paths"], sft_steps=2000)
    longer = toy_build.build("paths", tmp_path / "long", max_steps=6, snapshot_steps=(4,))
    stopped = toy_build.build("paths", tmp_path / "short", max_steps=4)
    assert (tmp_path / "long_step4" / "model.safetensors").read_bytes() == (stopped / "model.safetensors").read_bytes()
    assert (longer / "model.safetensors").read_bytes() != (stopped / "model.safetensors").read_bytes()


def test_short_builds_are_deterministic(tmp_path):
    first = toy_build.build("tiny", tmp_path / "a", max_steps=3)
    second = toy_build.build("tiny", tmp_path / "b", max_steps=3)
    assert (first / "model.safetensors").read_bytes() == (second / "model.safetensors").read_bytes()
    # What loads is the preset's model: its shape, and its parameter count by hand (embeddings tied to
    # the output layer; per layer q, o: h x h; k, v: h x (h / heads x kv_heads); the MLP's three
    # h x intermediate; two norms; one final norm).
    model = AutoModelForCausalLM.from_pretrained(first)
    preset, vocab = toy_build.PRESETS["tiny"], len(build_tokenizer())
    h, kv_width = preset.hidden_size, preset.hidden_size // preset.heads * preset.kv_heads
    shape = (model.config.vocab_size, model.config.hidden_size, model.config.num_hidden_layers, model.config.num_attention_heads,
             model.config.num_key_value_heads, model.config.intermediate_size, model.config.tie_word_embeddings)
    assert shape == (vocab, h, preset.layers, preset.heads, preset.kv_heads, preset.intermediate_size, True)
    per_layer = 2 * h * h + 2 * h * kv_width + 3 * h * preset.intermediate_size + 2 * h
    assert sum(p.numel() for p in model.parameters()) == vocab * h + preset.layers * per_layer + h
    assert json.loads((first / "asymrl_toy.json").read_text())["sft_steps"] == 3
    # It is the seeded initialisation after 3 SFT steps: every tensor moved, and by no more than 3 Adam
    # steps at the warm-up's learning rates, lr x (1 + 2 + 3) / warmup_steps (weight decay: 1e-6 more).
    torch.manual_seed(0)
    initial = LlamaForCausalLM(toy_build.model_config(preset, build_tokenizer())).state_dict()
    bound = preset.lr * (1 + 2 + 3) / preset.warmup_steps
    for name, tensor in model.state_dict().items():
        moved = float((tensor - initial[name]).abs().max())
        assert 0 < moved <= bound * 1.05, (name, moved, bound)


def test_paths_base_policy_explores_rather_than_knows(tmp_path):
    """The committed path-finding policy (toy:paths): on 100 validation problems at T = 1, a fair
    share solved at once, much more within 16 samples, most groups of 8 mixed (the full measurement on
    1,000 problems x 64 samples is benchmarks/results/paths_base_policy.json)."""
    from asymrl.evaluate import main

    policy = toy_build.ensure_base_policy("paths")
    assert policy == toy_build.ASSETS / "paths"
    assert toy_build.task_files("paths")["sft"].parent.name == "data"  # the paths task's files, not arithmetic's
    summary = main(["--checkpoint", "toy:paths", "--data", "paths", "--split", "validation", "--n", "16", "--limit", "100",
                    "--max-new-tokens", "32", "--backend", "transformers", "--dtype", "float32", "--device", "cpu",
                    "--prompt-template", "{problem}", "--reward", "paths", "--out", str(tmp_path)])
    pass_at = summary["pass_at_k"]
    assert 0.12 <= pass_at["1"] <= 0.45, pass_at
    assert pass_at["16"] - pass_at["1"] >= 0.3, pass_at  # more samples find paths one sample does not
    assert summary["groups"]["mixed"] >= 0.45 and summary["groups"]["all_solved"] <= 0.2, summary["groups"]
    assert summary["groups"]["distinct_correct"] > 1.2, summary["groups"]  # several paths found per solved group
