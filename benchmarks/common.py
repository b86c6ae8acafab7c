"""What the benchmarks share: the model shapes they build with random weights (Qwen2 architecture:
the cost of a step does not depend on what the model knows), and where they write their JSON."""

import os
from pathlib import Path

from asymrl.provenance import machine, provenance  # noqa: F401  (every benchmark records it)

SHAPES = {
    "small-30m": dict(hidden_size=512, intermediate_size=1536, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=4, vocab_size=2048),
    "tiny": dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, vocab_size=128),
    # A tiny body with Qwen's vocabulary: what generation keeps per token x vocabulary, at low cost.
    "tiny-qwen-vocab": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2, vocab_size=151936),
    "qwen2.5-0.5b": dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12, num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
}


def matmul_parameters(model) -> int:
    """Parameters that take part in a matrix product per token: all of them but the input embedding
    (a lookup), plus the LM head when it is tied to that embedding (the product still happens)."""
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    total = sum(p.numel() for p in model.parameters())
    return total - embedding.numel() + (head.numel() if head is embedding else 0)


def results_dir() -> Path:
    """``benchmarks/results`` (committed figures), or ``$BENCHMARK_RESULTS`` (a smoke run's scratch folder)."""
    folder = Path(os.environ.get("BENCHMARK_RESULTS") or Path(__file__).parent / "results")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
