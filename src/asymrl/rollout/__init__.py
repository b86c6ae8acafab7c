"""Rollout engines behind one interface, registered by name: colocated vLLM (in-place weight sync)
and transformers. ``build_engine(name, model_dir, options, ...)`` builds the one a config chooses."""

from __future__ import annotations

from asymrl.rollout.base import Completion, EngineSetup, NoOptions, Prompt, RolloutEngine, SamplingParams, collate
from asymrl.rollout.registry import AUTO, ENGINES, available, build_engine, choices, get, register, resolve, vllm_available
from asymrl.rollout.weight_sync import iter_full_parameters, push_weights

# The built-in engines register themselves on import.
from asymrl.rollout.hf_engine import TransformersEngine, TransformersOptions
from asymrl.rollout.vllm_engine import VLLMEngine, VLLMOptions

__all__ = [
    "AUTO", "ENGINES", "Completion", "EngineSetup", "NoOptions", "Prompt", "RolloutEngine", "SamplingParams", "TransformersEngine",
    "TransformersOptions", "VLLMEngine", "VLLMOptions", "available", "build_engine", "choices", "collate", "get",
    "iter_full_parameters", "push_weights", "register", "resolve", "vllm_available",
]
