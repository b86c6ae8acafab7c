"""What the benchmarks share: the model shapes they build with random weights (Qwen2 architecture:
the cost of a step does not depend on what the model knows), and where they write their JSON."""

import os
from pathlib import Path

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


def machine() -> dict:
    """The CPU a figure was measured on: model name, cores, and whether it has bf16 / AMX instructions
    (they change both speed and bf16 rounding), plus the GPU when there is one."""
    import platform

    import torch

    flags, model = set(), platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "x86_64", ""):
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"cpu": model, "cpu_count": os.cpu_count(), "avx512_bf16": "avx512_bf16" in flags, "amx_bf16": "amx_bf16" in flags,
            "torch_threads": torch.get_num_threads(), "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def provenance(command: str) -> dict:
    """What every result file records: the command that wrote it, the commit it ran at (with whether
    the tree had uncommitted changes), the date, and the machine."""
    import datetime
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    return {"command": command, "commit": git("rev-parse", "--short", "HEAD") or None, "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "machine": machine()}
