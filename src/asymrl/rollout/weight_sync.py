"""Pushing the trainer's weights into a rollout engine after each optimizer step.

Under DeepSpeed ZeRO-3 every rank holds a shard of each parameter. ``iter_full_parameters`` gathers
one parameter at a time (``GatheredParameters``) and yields a CPU copy before the next gather, so the
full model never exists twice on the accelerator; the engine receives the tensors one by one.
Every rank must iterate (the gathers are collective); each rank feeds its own colocated engine.
"""

from __future__ import annotations

from typing import Iterator

import torch


def _is_zero3(parameter: torch.nn.Parameter) -> bool:
    return hasattr(parameter, "ds_id")


def iter_full_parameters(model: torch.nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """``(name, full tensor)`` for every entry of the model's state dict, ZeRO-3 shards gathered.

    Tied weights (e.g. ``lm_head.weight`` = ``embed_tokens.weight``) are yielded under each name.
    """
    names_of: dict[int, list[str]] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        names_of.setdefault(id(tensor), []).append(name)
    by_id = {id(p): p for p in model.parameters()}
    by_id.update({id(b): b for b in model.buffers()})
    for key, names in names_of.items():
        tensor = by_id.get(key)
        if tensor is None:
            continue
        if _is_zero3(tensor):
            import deepspeed

            with deepspeed.zero.GatheredParameters([tensor], modifier_rank=None):
                full = tensor.detach().clone()
        else:
            full = tensor.detach()
        for name in names:
            yield name, full


def push_weights(engine, model: torch.nn.Module) -> None:
    """Load ``model``'s current weights into ``engine`` (the bare transformers model, unwrapped)."""
    engine.update_weights(iter_full_parameters(model))
