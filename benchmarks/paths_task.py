"""The path-finding task's shape, counted from what it generates (no model, a few seconds).

    python benchmarks/paths_task.py

The graph of seed 0 (nodes, layers, edges), the (source, target) pairs of each split, the SFT paths
and the number of distinct valid paths per problem (median, quartiles, share with more than one).
Writes ``benchmarks/results/paths_task.json``; the README's description of the task quotes it.
"""

from __future__ import annotations

import json
import shlex
import statistics
import sys

from asymrl.toy.paths import SPLITS, build_graph, ensure_paths_data
from common import provenance, results_dir  # benchmarks/common.py, beside this script


def main() -> None:
    seed = 0
    graph = build_graph(seed)
    files = ensure_paths_data(seed)
    splits = {}
    for split in SPLITS:
        rows = [json.loads(line) for line in files[split].read_text().splitlines() if line.strip()]
        counts = sorted(row["num_paths"] for row in rows)
        quartiles = statistics.quantiles(counts, n=4)
        splits[split] = {
            "rows": len(rows),
            "pairs": len({(row["source"], row["target"]) for row in rows}),
            "hops": [min(row["hops"] for row in rows), max(row["hops"] for row in rows)],
            "num_paths_median": statistics.median(counts),
            "num_paths_quartiles": [quartiles[0], quartiles[2]],
            "more_than_one_path_frac": round(sum(c > 1 for c in counts) / len(counts), 4),
        }
    pair_sets = [{(json.loads(line)["source"], json.loads(line)["target"]) for line in files[s].read_text().splitlines() if line.strip()}
                 for s in SPLITS]
    disjoint = all(not (a & b) for i, a in enumerate(pair_sets) for b in pair_sets[i + 1:])
    record = {
        "benchmark": "paths task shape",
        "provenance": provenance(shlex.join(["python", *sys.argv])),
        "graph_seed": seed,
        "graph": {"layers": len(graph.layers), "nodes": sum(len(layer) for layer in graph.layers),
                  "edges": sum(len(successors) for successors in graph.successors.values())},
        "splits": splits,
        "splits_disjoint_by_pair": disjoint,
    }
    out = results_dir() / "paths_task.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("graph", "splits_disjoint_by_pair")}), {s: v["pairs"] for s, v in splits.items()})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
