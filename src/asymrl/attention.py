"""``sdpa_gqa``: transformers' SDPA attention, without copying grouped key / value heads on CPUs.

With grouped-query attention (fewer key / value heads than query heads: Qwen, Llama 3, the toy
policies) transformers' ``sdpa`` expands the key and value heads to one per query head
(``repeat_kv``) whenever an attention mask is given, because CUDA's fused kernels fall back to the
math kernel for masked GQA. PyTorch's CPU kernel takes the mask and ``enable_gqa=True`` together.
Every batch of left-padded prompts carries a mask, so on a CPU that copy is paid at each decoded
token: without it the tiny policy samples 256 rows x 64 tokens 1.28x faster, with the same tokens
(``benchmarks/attention.py``); a masked forward + backward gains little (1.03x). The forward's
output is sdpa's up to float32 rounding (tested to 1e-5, with the same sampled tokens): two kernel
calls need not round alike.

Only that case is handled here; every other call (GPUs, no mask, no grouping) is transformers'
``sdpa_attention_forward`` itself. Registering a name with transformers' ``AttentionInterface`` (and
sdpa's mask builder under it) is its documented way to plug in an attention function.
"""

from __future__ import annotations

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

NAME = "sdpa_gqa"


def sdpa_gqa_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                       attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                       **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature: ``query`` is ``(batch, heads, q_len, head_dim)``,
    ``key`` / ``value`` ``(batch, kv_heads, kv_len, head_dim)``; returns ``(batch, q_len, heads, head_dim)``."""
    grouped = getattr(module, "num_key_value_groups", 1) > 1
    plain = kwargs.get("position_bias") is None and kwargs.get("cache") is None and not kwargs.get("output_attentions", False)
    if not (query.device.type == "cpu" and attention_mask is not None and grouped and plain):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs)
    # With a mask, sdpa_attention_forward passes is_causal=False too: the mask holds the causal pattern.
    output = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, enable_gqa=True
    )
    return output.transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, sdpa_gqa_attention)
AttentionMaskInterface.register(NAME, sdpa_mask)


def prefer_sdpa_gqa(model: torch.nn.Module) -> torch.nn.Module:
    """Switch a model that runs transformers' ``sdpa`` to ``sdpa_gqa`` (others, e.g. eager for a model
    without SDPA support, are left as they are). Callers apply it where no implementation was asked
    for (``model.attn_implementation`` null). Returns the model."""
    if getattr(model.config, "_attn_implementation", None) == "sdpa":
        model.set_attn_implementation(NAME)
    return model
