"""Rollout engines on the tiny base policy (CPU): samples, masks, log-probs, weight updates."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from asymrl.logprobs import sequence_logprobs
from asymrl.rollout import SamplingParams, build_engine, collate, push_weights, vllm_available
from asymrl.toy.build import ensure_base_policy

PROMPTS = [[{"role": "user", "content": "Compute 47+38."}], [{"role": "user", "content": "Solve 3x+7=22."}], "<|user|>Reduce 18/24.<|assistant|>"]


@pytest.fixture(scope="module")
def policy_dir():
    return ensure_base_policy("tiny")


@pytest.fixture(scope="module")
def hf_engine(policy_dir):
    return build_engine("transformers", policy_dir)


def perturbed_model(policy_dir, scale: float = 0.3):
    """The base policy with noise on its MLPs: a stand-in for 'the policy after an update'."""
    model = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "mlp" in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * scale * parameter.std())
    return model


def greedy_ids(engine, prompts=PROMPTS) -> list[list[int]]:
    return [group[0].response_ids for group in engine.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=48))]


def test_g_samples_per_prompt_with_consistent_masks(hf_engine):
    groups = hf_engine.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=48, seed=0))
    assert [len(g) for g in groups] == [4, 4, 4]
    eos = hf_engine.tokenizer.eos_token_id
    completions = [c for g in groups for c in g]
    for completion in completions:
        assert completion.finish_reason in ("eos", "length")
        assert (completion.response_ids[-1] == eos) == (completion.finish_reason == "eos")
        assert eos not in completion.response_ids[:-1]
        assert len(completion.response_logprobs) == len(completion.response_ids)
        assert all(lp <= 0 for lp in completion.response_logprobs)
    assert len({tuple(c.response_ids) for c in groups[1]}) > 1, "samples of a prompt should differ"
    batch = collate(completions, hf_engine.tokenizer.pad_token_id)
    for row, completion in enumerate(completions):
        assert int(batch["response_mask"][row].sum()) == len(completion.response_ids)
        assert int(batch["attention_mask"][row].sum()) == len(completion.prompt_ids) + len(completion.response_ids)
        start = len(completion.prompt_ids)
        assert batch["input_ids"][row, start : start + len(completion.response_ids)].tolist() == completion.response_ids


def test_seeded_sampling_is_reproducible(hf_engine):
    params = SamplingParams(n=3, temperature=1.0, max_new_tokens=32, seed=11)
    first = [c.response_ids for g in hf_engine.generate(PROMPTS, params) for c in g]
    second = [c.response_ids for g in hf_engine.generate(PROMPTS, params) for c in g]
    assert first == second


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_engine_logprobs_agree_with_trainer_recomputation(hf_engine, policy_dir, temperature):
    groups = hf_engine.generate(PROMPTS, SamplingParams(n=2, temperature=temperature, max_new_tokens=40, seed=1))
    completions = [c for g in groups for c in g]
    batch = collate(completions, hf_engine.tokenizer.pad_token_id)
    model = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    with torch.no_grad():
        recomputed, _ = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["response_mask"], temperature=temperature)
    mask = batch["response_mask"].bool()
    difference = (recomputed[mask] - batch["engine_logprobs"][mask]).abs().max().item()
    print(f"max |engine - trainer| log-prob difference (transformers, T={temperature}): {difference:.2e}")
    assert difference < 1e-4


def assert_engine_follows_an_update(engine, policy_dir) -> list[list[int]]:
    """Push perturbed weights: the engine's greedy output must become that of the perturbed model
    (run by a fresh transformers engine) and differ from before. Returns the output before."""
    before = greedy_ids(engine)
    updated = perturbed_model(policy_dir)
    push_weights(engine, updated)
    reference = build_engine("transformers", policy_dir)
    reference.model = updated
    after = greedy_ids(engine)
    assert after == greedy_ids(reference)
    assert after != before
    return before


def test_weight_update_makes_the_engine_follow_the_new_policy(policy_dir):
    assert_engine_follows_an_update(build_engine("transformers", policy_dir), policy_dir)


needs_vllm = pytest.mark.skipif(not vllm_available(), reason="vllm is not installed")


@pytest.fixture(scope="module")
def vllm_engine(policy_dir):
    if not vllm_available():
        pytest.skip("vllm is not installed")
    engine = build_engine("vllm", policy_dir, max_model_len=256)
    yield engine
    engine.close()


@needs_vllm
@pytest.mark.vllm
def test_vllm_and_transformers_greedy_agree(vllm_engine, hf_engine):
    assert greedy_ids(vllm_engine) == greedy_ids(hf_engine)


@needs_vllm
@pytest.mark.vllm
def test_vllm_samples_and_logprobs(vllm_engine, policy_dir):
    groups = vllm_engine.generate(PROMPTS, SamplingParams(n=4, temperature=1.0, max_new_tokens=40, seed=2))
    assert [len(g) for g in groups] == [4, 4, 4]
    completions = [c for g in groups for c in g]
    batch = collate(completions, vllm_engine.tokenizer.pad_token_id)
    model = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    with torch.no_grad():
        recomputed, _ = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["response_mask"])
    mask = batch["response_mask"].bool()
    difference = (recomputed[mask] - batch["engine_logprobs"][mask]).abs().max().item()
    print(f"max |engine - trainer| log-prob difference (vLLM): {difference:.2e}")
    assert difference < 1e-3


@needs_vllm
@pytest.mark.vllm
def test_vllm_weight_update_in_place(vllm_engine, policy_dir):
    before = assert_engine_follows_an_update(vllm_engine, policy_dir)
    push_weights(vllm_engine, AutoModelForCausalLM.from_pretrained(policy_dir))  # restore for other tests
    assert greedy_ids(vllm_engine) == before

