"""Rollout engines: colocated vLLM (in-place weight sync) and transformers, behind one interface."""

from __future__ import annotations

from asymrl.rollout.base import Completion, Prompt, RolloutEngine, SamplingParams, collate
from asymrl.rollout.weight_sync import iter_full_parameters, push_weights


def vllm_available() -> bool:
    try:
        import vllm  # noqa: F401
    except ImportError:
        return False
    return True


def build_engine(backend: str, model_dir, *, dtype: str = "float32", device: str = "cpu", seed: int = 0,
                 max_model_len: int = 2048, gpu_memory_utilization: float = 0.5, sleep_mode: bool = False,
                 use_chat_template: bool = True, enable_thinking: bool | None = None, static_cache: bool = False) -> RolloutEngine:
    """``backend``: ``vllm``, ``transformers``, or ``auto`` (vLLM when importable, else transformers)."""
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if backend == "auto":
        backend = "vllm" if vllm_available() else "transformers"
    if backend == "vllm":
        from asymrl.rollout.vllm_engine import VLLMEngine

        return VLLMEngine(model_dir, dtype=dtype, device=device, seed=seed, max_model_len=max_model_len,
                          gpu_memory_utilization=gpu_memory_utilization, sleep_mode=sleep_mode,
                          use_chat_template=use_chat_template, enable_thinking=enable_thinking)
    if backend == "transformers":
        from asymrl.rollout.hf_engine import TransformersEngine

        return TransformersEngine(model_dir, dtype=dtype, device=device, use_chat_template=use_chat_template,
                                  enable_thinking=enable_thinking, static_cache=static_cache)
    raise ValueError(f"unknown rollout backend {backend!r}; choose vllm, transformers or auto")


__all__ = ["Completion", "Prompt", "RolloutEngine", "SamplingParams", "build_engine", "collate", "iter_full_parameters", "push_weights", "vllm_available"]
