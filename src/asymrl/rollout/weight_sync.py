"""ZeRO-3-aware weights: pushing the trainer's weights into a rollout engine after each optimizer
step, and loading whole copies of a model (engine, KL reference) inside a ZeRO-3 run.

Under DeepSpeed ZeRO-3 every rank holds a shard of each parameter. ``iter_full_parameters`` gathers
one parameter at a time (``GatheredParameters``) and yields a CPU copy before the next gather, so the
full model never exists twice on the accelerator; the engine receives the tensors one by one.
Every rank must iterate (the gathers are collective); each rank feeds its own colocated engine.

A LoRA policy (a peft model) is exported merged: each adapted layer's weight is yielded as
``W + (alpha / r) B A`` under the base model's plain name, computed into a new tensor. The engines
therefore never see peft's names, and the training model is not touched: peft's
``merge_adapter()`` / ``unmerge_adapter()`` would add and subtract the update in place, so the frozen
base weights would drift by rounding error at every export (bf16: visibly), and under ZeRO-3 they
would have to be gathered and modified in place.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager, nullcontext
from typing import Iterator

import torch


@contextmanager
def full_weights_loading():
    """Load a complete model even inside a DeepSpeed ZeRO-3 run.

    Under ZeRO-3, accelerate registers its config with transformers, and every later
    ``from_pretrained`` partitions the weights across ranks. A copy that DeepSpeed does not manage
    (the rollout engine's, the frozen KL reference) would then hold empty shards that nothing
    gathers: it must stay whole on each rank, so the registration is hidden while it loads.
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


def _is_zero3(parameter: torch.nn.Parameter) -> bool:
    return hasattr(parameter, "ds_id")


def gathered(tensors: list[torch.Tensor]):
    """A context in which ZeRO-3 partitioned ``tensors`` are whole on every rank (collective)."""
    partitioned = [t for t in tensors if _is_zero3(t)]
    if not partitioned:
        return nullcontext()
    import deepspeed

    return deepspeed.zero.GatheredParameters(partitioned, modifier_rank=None)


def lora_layers(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    """The LoRA-adapted layers of a peft model, by their name in the base model ({} otherwise).

    peft is looked up only if something imported it: a model cannot be a peft model before that,
    and a full fine-tuning run need not pay peft's import time.
    """
    peft = sys.modules.get("peft")
    if peft is None or not isinstance(model, peft.PeftModel):
        return {}
    from peft.tuners.lora import LoraLayer

    return {name: module for name, module in model.get_base_model().named_modules() if isinstance(module, LoraLayer)}


@torch.no_grad()
def merged_weight(layer: torch.nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """``W + sum over active adapters of (alpha / r) B A`` (peft's ``get_delta_weight``), as a new
    tensor in ``weight``'s dtype, summed in float32."""
    merged = weight.detach().to(torch.float32, copy=True)
    for adapter in layer.active_adapters:
        if adapter in layer.lora_A:
            merged += layer.get_delta_weight(adapter).float()
    return merged.to(weight.dtype)


def iter_full_parameters(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, full tensor)`` for every entry of the model's state dict, ZeRO-3 shards gathered.

    Tied weights (e.g. ``lm_head.weight`` = ``embed_tokens.weight``) are yielded under each name. A
    peft (LoRA) model yields its base model's names, adapted weights merged, adapters left out.
    """
    layers = lora_layers(model)
    base = model.get_base_model() if layers else model
    # Which LoRA layer owns a base weight, and which tensors are adapters (merged, not yielded).
    merged_into: dict[int, torch.nn.Module] = {}
    adapter_ids: set[int] = set()
    for layer in layers.values():
        merged_into[id(layer.get_base_layer().weight)] = layer
        base_ids = {id(p) for p in layer.get_base_layer().parameters()}
        adapter_ids.update(id(p) for p in layer.parameters() if id(p) not in base_ids)
    names_of: dict[int, list[str]] = {}
    for name, tensor in base.state_dict(keep_vars=True).items():
        names_of.setdefault(id(tensor), []).append(name)
    by_id = {id(p): p for p in base.parameters()}
    by_id.update({id(b): b for b in base.buffers()})
    for key, names in names_of.items():
        tensor = by_id.get(key)
        if tensor is None or key in adapter_ids:
            continue
        layer = merged_into.get(key)
        with gathered([tensor] if layer is None else list(layer.parameters())):
            if layer is not None:
                full = merged_weight(layer, tensor)
            elif _is_zero3(tensor):
                full = tensor.detach().clone()
            else:
                full = tensor.detach()
        for name in names:
            # peft keeps an adapted layer's own weights under "<layer>.base_layer.<weight|bias>".
            yield (name.replace(".base_layer.", ".") if layers else name), full


def push_weights(engine, model: torch.nn.Module) -> None:
    """Load ``model``'s current weights into ``engine`` (the bare transformers model, unwrapped)."""
    engine.update_weights(iter_full_parameters(model))
