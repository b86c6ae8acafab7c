"""``sdpa_gqa`` (asymrl.attention): transformers' sdpa without the grouped key / value copy on CPUs."""

from __future__ import annotations

import torch


def tiny_policy():
    from transformers import AutoModelForCausalLM

    from asymrl.toy.build import ensure_base_policy

    model = AutoModelForCausalLM.from_pretrained(ensure_base_policy("tiny")).eval()
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # grouped-query attention
    return model


def left_padded_batch(rows: int = 6):
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 12, (rows,), generator=generator)
    width = int(lengths.max())
    attention_mask = (torch.arange(width)[None] >= (width - lengths)[:, None]).long()
    input_ids = torch.randint(3, 100, (rows, width), generator=generator) * attention_mask
    return input_ids, attention_mask


def test_sdpa_gqa_gives_sdpa_outputs_without_copying_the_key_value_heads(monkeypatch):
    """Masked (padded) batches: the same logits up to float32 rounding, the same sampled tokens, and
    transformers' repeat_kv never called (it is under sdpa).

    Bit-for-bit equality is not a guarantee: sdpa_gqa computes the same attention in another kernel
    call (enable_gqa on the grouped heads instead of on copies of them), whose summation order PyTorch
    does not promise to keep on every CPU. The logits agree to 1e-5 (float32 logits of size ~10, so a
    few units in the last place); the sampled tokens agree because a draw could only change where
    the sampler's uniform number falls within ~1e-6 of a boundary between two tokens' cumulative
    probabilities, which 72 draws do not come near."""
    import transformers.integrations.sdpa_attention as sdpa_module

    import asymrl.attention  # noqa: F401  (registers sdpa_gqa)

    model = tiny_policy()
    input_ids, attention_mask = left_padded_batch()
    calls = {"repeat_kv": 0}
    repeat_kv = sdpa_module.repeat_kv

    def counting_repeat_kv(*args):
        calls["repeat_kv"] += 1
        return repeat_kv(*args)

    monkeypatch.setattr(sdpa_module, "repeat_kv", counting_repeat_kv)
    outputs, copies = {}, {}
    for name in ("sdpa", "sdpa_gqa"):
        model.set_attn_implementation(name)
        calls["repeat_kv"] = 0
        with torch.no_grad():
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
            torch.manual_seed(3)
            sampled = model.generate(input_ids=input_ids, attention_mask=attention_mask, do_sample=True, top_k=0,
                                     max_new_tokens=12, pad_token_id=0, eos_token_id=2)
        outputs[name], copies[name] = (logits, sampled), calls["repeat_kv"]
    torch.testing.assert_close(outputs["sdpa_gqa"][0], outputs["sdpa"][0], rtol=1e-5, atol=1e-5)
    assert torch.equal(outputs["sdpa"][1], outputs["sdpa_gqa"][1])
    assert copies["sdpa"] > 0 and copies["sdpa_gqa"] == 0


def test_sdpa_gqa_gradients_equal_sdpa_gradients():
    import asymrl.attention  # noqa: F401

    model = tiny_policy().train()
    input_ids, attention_mask = left_padded_batch()
    grads = {}
    for name in ("sdpa", "sdpa_gqa"):
        model.set_attn_implementation(name)
        model.zero_grad()
        model(input_ids=input_ids, attention_mask=attention_mask).logits.logsumexp(-1).mean().backward()
        grads[name] = torch.cat([p.grad.flatten() for p in model.parameters()])
    torch.testing.assert_close(grads["sdpa_gqa"], grads["sdpa"], rtol=1e-5, atol=1e-7)


def test_models_asymrl_loads_run_sdpa_gqa_unless_another_is_asked_for():
    """The engine's copy, the frozen reference and (model.attn_implementation null) the policy run
    sdpa_gqa; an implementation asked for stays."""
    from transformers import AutoModelForCausalLM

    from asymrl.attention import prefer_sdpa_gqa
    from asymrl.rollout.base import EngineSetup
    from asymrl.rollout.hf_engine import TransformersEngine, TransformersOptions
    from asymrl.toy.build import ensure_base_policy
    from asymrl.update import load_frozen_policy

    model_dir = ensure_base_policy("tiny")
    engine = TransformersEngine(EngineSetup(model_dir), TransformersOptions())
    assert engine.model.config._attn_implementation == "sdpa_gqa"
    assert load_frozen_policy(model_dir, "float32", "cpu").model.config._attn_implementation == "sdpa_gqa"
    eager = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager")
    assert prefer_sdpa_gqa(eager).config._attn_implementation == "eager"
