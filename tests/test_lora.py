"""LoRA through peft on the tiny base policy (CPU): one update trains the adapters only, both rollout
engines then answer like the merged model, a checkpoint resumes it, and ``best/`` holds the merged
model (plain transformers) and the adapter."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import AutoModelForCausalLM

from asymrl.checkpoint import load_checkpoint, save_checkpoint
from asymrl.rollout import SamplingParams, build_engine, collate, iter_full_parameters, push_weights, vllm_available
from asymrl.toy.build import ensure_base_policy
from asymrl.toy.task import generate_problems
from asymrl.update import PolicyUpdater, RolloutBatch, UpdateConfig, build_accelerator

PROBES = [[{"role": "user", "content": p["problem"]}] for p in generate_problems(seed=11, n=8, split="validation")]
GREEDY = SamplingParams(n=1, temperature=0.0, max_new_tokens=48)
ROWS, MICRO = 16, 4  # 4 prompts x G = 4, one optimizer step in micro-batches of 4
LORA = UpdateConfig(lr=2e-2, micro_batch_size=MICRO, lora_rank=4, lora_alpha=8.0)


@pytest.fixture(scope="module")
def policy_dir():
    return ensure_base_policy("tiny")


def lora_updater(policy_dir) -> PolicyUpdater:
    accelerator = build_accelerator(ROWS // MICRO, MICRO, 1.0)
    return PolicyUpdater(accelerator, AutoModelForCausalLM.from_pretrained(policy_dir), LORA)


def greedy_ids(engine) -> list[list[int]]:
    return [group[0].response_ids for group in engine.generate(PROBES, GREEDY)]


@pytest.fixture(scope="module")
def stepped(policy_dir):
    """One LoRA update on sampled rollouts with +-1 advantages; the tensors before it, a merged reference."""
    updater = lora_updater(policy_dir)
    frozen_before = {n: p.detach().clone() for n, p in updater.model.named_parameters() if not p.requires_grad}
    adapters_before = {n: p.detach().clone() for n, p in updater.model.named_parameters() if p.requires_grad}
    engine = build_engine("transformers", policy_dir)
    base_answers = greedy_ids(engine)
    groups = engine.generate(PROBES[: ROWS // 4], SamplingParams(n=4, temperature=1.0, max_new_tokens=32, seed=0))
    tensors = collate([c for group in groups for c in group], engine.tokenizer.pad_token_id)
    batch = RolloutBatch(tensors["input_ids"], tensors["attention_mask"], tensors["response_mask"])
    old_logprobs, _ = updater.logprobs(batch)
    signs = torch.tensor([1.0, -1.0]).repeat(ROWS // 2)[:, None]
    metrics = updater.update(batch, signs * batch.response_mask, old_logprobs, mini_batch_rows=ROWS)
    assert metrics["actor/optimizer_steps"] == 1
    # The reference merge: peft's own merge_and_unload, on a copy (the export must not need one).
    merged = copy.deepcopy(updater.model).merge_and_unload().eval()
    return {"updater": updater, "engine": engine, "frozen_before": frozen_before, "adapters_before": adapters_before,
            "base_answers": base_answers, "merged": merged}


def test_the_update_trains_the_adapters_only(stepped):
    updater = stepped["updater"]
    trainable = {id(p) for p in updater.model.parameters() if p.requires_grad}
    in_optimizer = {id(p) for group in updater._raw_optimizer().param_groups for p in group["params"]}
    assert in_optimizer == trainable
    assert sum(p.numel() for p in updater.model.parameters() if p.requires_grad) < 0.1 * sum(p.numel() for p in updater.model.parameters())
    named = dict(updater.model.named_parameters())
    assert all(torch.equal(named[n], before) for n, before in stepped["frozen_before"].items()), "a base weight changed"
    assert any(".base_layer." in n for n in stepped["frozen_before"])
    changed = {n for n, before in stepped["adapters_before"].items() if not torch.equal(named[n], before)}
    # B starts at 0, so the first step moves B only (A's gradient is B^T times something).
    assert changed == {n for n in stepped["adapters_before"] if ".lora_B." in n} and changed


def test_the_export_is_the_merged_model_under_the_base_names(stepped, policy_dir):
    exported = dict(iter_full_parameters(stepped["updater"].model))
    reference = stepped["merged"].state_dict()
    assert exported.keys() == AutoModelForCausalLM.from_pretrained(policy_dir).state_dict().keys() == reference.keys()
    for name, tensor in exported.items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6, msg=name)
    assert not torch.equal(exported["model.layers.0.mlp.down_proj.weight"], stepped["frozen_before"]["base_model.model.model.layers.0.mlp.down_proj.base_layer.weight"])


def assert_engine_answers_like_the_merged_model(engine, stepped, policy_dir):
    push_weights(engine, stepped["updater"].model)
    reference = build_engine("transformers", policy_dir)
    reference.model = stepped["merged"]
    answers = greedy_ids(engine)
    assert answers == greedy_ids(reference)
    assert answers != stepped["base_answers"], "the step changed no greedy answer: the test could not see a stale engine"


def test_the_transformers_engine_answers_like_the_merged_model(stepped, policy_dir):
    assert_engine_answers_like_the_merged_model(stepped["engine"], stepped, policy_dir)


@pytest.mark.vllm
@pytest.mark.skipif(not vllm_available(), reason="vllm is not installed")
def test_the_vllm_engine_answers_like_the_merged_model(stepped, policy_dir):
    engine = build_engine("vllm", policy_dir, max_model_len=256)
    try:
        assert_engine_answers_like_the_merged_model(engine, stepped, policy_dir)
    finally:
        engine.close()


def test_best_holds_the_merged_model_and_the_adapter(stepped, policy_dir, tmp_path):
    from peft import PeftModel

    updater = stepped["updater"]
    updater.save_pretrained(tmp_path / "best", stepped["engine"].tokenizer)
    reference = stepped["merged"].state_dict()
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "best").state_dict()
    assert loaded.keys() == reference.keys()
    for name, tensor in loaded.items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6, msg=name)
    assert (tmp_path / "best" / "adapter" / "adapter_config.json").is_file()
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(policy_dir), tmp_path / "best" / "adapter")
    for name, tensor in with_adapter.merge_and_unload().state_dict().items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=1e-6, msg=name)
    reference_engine = build_engine("transformers", policy_dir)
    reference_engine.model = stepped["merged"]
    assert greedy_ids(build_engine("transformers", tmp_path / "best")) == greedy_ids(reference_engine)


def test_a_checkpoint_resumes_the_adapters(stepped, policy_dir, tmp_path):
    updater = stepped["updater"]
    path = save_checkpoint(updater.accelerator, tmp_path, 1, {"step": 1}, keep_last=1)
    resumed = lora_updater(policy_dir)
    load_checkpoint(resumed.accelerator, path)
    assert resumed.optimizer_steps == updater.optimizer_steps == 1
    expected = dict(iter_full_parameters(updater.model))
    for name, tensor in iter_full_parameters(resumed.model):
        assert torch.equal(tensor, expected[name]), name
    optimizer_state = resumed._raw_optimizer().state_dict()["state"]
    assert len(optimizer_state) == sum(1 for p in resumed.model.parameters() if p.requires_grad)


def test_a_lora_run_resumes_with_its_counters_and_leaves_a_loadable_best(tmp_path):
    """train.py's path with model.lora_rank: one step and a checkpoint, then a second run resumes it."""
    from helpers import SMALL_RUN, tensorboard_scalars

    from asymrl.config import parse_args
    from asymrl.metrics import read_metrics
    from asymrl.trainer import Trainer

    run = [*SMALL_RUN, "model.lora_rank=4", "model.lora_alpha=8", "train.lr=1e-2", "eval.at_start=false", "eval.every_steps=0",
           "eval.sampled_n=0", "eval.max_problems=8", "train.save_every=1", f"train.output_dir={tmp_path}"]
    Trainer(parse_args([*run, "train.total_steps=1"])).train()
    summary = Trainer(parse_args([*run, "train.total_steps=2"])).train()
    assert summary["steps"] == 2 and summary["weights_in_sync"]
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    # The optimizer step counter continues across the resume instead of restarting at 0.
    assert records[1]["actor/optimizer_steps"] == 2 * records[0]["actor/optimizer_steps"] > 0
    assert [step for step, _ in tensorboard_scalars(tmp_path / "tensorboard" / "asymrl", "reward/accuracy")] == [1, 2]
    assert AutoModelForCausalLM.from_pretrained(tmp_path / "best").config.model_type == "llama"
    assert (tmp_path / "best" / "adapter" / "adapter_model.safetensors").is_file()
