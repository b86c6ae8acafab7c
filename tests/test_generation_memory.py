"""The transformers engine's memory does not grow with new tokens x vocabulary (issue 14).

A random Llama with Qwen's 151,936-token vocabulary (hidden size 64, so the model itself is ~80 MB)
decodes ROWS x NEW_TOKENS tokens in a fresh process, whose peak resident memory is compared with its
memory just before ``generate``. Keeping every step's logits, as ``output_logits=True`` did, holds
ROWS x NEW_TOKENS x 151,936 float32 = 2.5 GB in the returned tuple and as much again in their stack;
the engine now keeps one ROWS x vocabulary buffer (~10 MB) and the step's transient logits.

Decoding is greedy: the engine records log-probs the same way as when it samples, and on a CPU the
sampler's draw (and top-p's sort) over 151,936 tokens would cost ~0.2 s a step, several minutes here.
"""

from __future__ import annotations

import json
import subprocess
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from asymrl.toy.tokenizer import build_tokenizer

VOCAB = 151_936
ROWS, NEW_TOKENS = 16, 256  # 32 rows took ~50 s of CPU
BOUND_BYTES = 1 << 30  # 1 GiB: the stacked logits alone would be ROWS * NEW_TOKENS * VOCAB * 4 B = 2.5 GB
# A regression then fails on an allocation error instead of taking the machine's memory.
ADDRESS_SPACE_HEADROOM = 6 << 30

CHILD = """
import json, resource, sys
from asymrl.rollout import SamplingParams, build_engine

model_dir, rows, new_tokens, headroom = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
engine = build_engine("transformers", model_dir)
prompts = [[4, 40 + row % 60, 41, 5] for row in range(rows)]
# Two steps first: thread pools and their allocator arenas exist before the limit and the baseline.
engine.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=2))

def status_bytes(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

resource.setrlimit(resource.RLIMIT_AS, (status_bytes("VmSize") + headroom, resource.RLIM_INFINITY))
before = status_bytes("VmRSS")
# Reset the peak (VmHWM) to the current RSS (Linux >= 4.0), so that the peak read after is generate's
# own. ru_maxrss, the process's lifetime peak, counts whatever peaked before generate too: it once read
# 1.4 GB over the baseline in a suite run, where generate itself adds ~0.1 GB.
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")
groups = engine.generate(prompts, SamplingParams(n=1, temperature=0.0, max_new_tokens=new_tokens))
peak = status_bytes("VmHWM")
completions = [group[0] for group in groups]
print(json.dumps({"peak_increase": peak - before, "lengths": [len(c.response_ids) for c in completions],
                  "logprobs": [len(c.response_logprobs) for c in completions]}))
"""


def test_generation_memory_does_not_grow_with_tokens_times_vocabulary(tmp_path):
    tokenizer = build_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), str(ROWS), str(NEW_TOKENS), str(ADDRESS_SPACE_HEADROOM)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"peak resident memory added by generate ({ROWS} rows x {NEW_TOKENS} tokens, vocabulary {VOCAB}): "
          f"{measured['peak_increase'] / 2**20:.0f} MiB")
    # A random policy over 151,936 tokens seldom picks EOS: generate ran all NEW_TOKENS steps, the
    # case the old stack grew with.
    assert max(measured["lengths"]) == NEW_TOKENS
    assert measured["logprobs"] == measured["lengths"]
    assert measured["peak_increase"] < BOUND_BYTES
