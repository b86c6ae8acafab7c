"""A second embedded task, path-finding on a fixed random graph: its failures are wrong branch choices.

The graph is a layered directed acyclic graph, a pure function of a seed: ``LAYERS`` layers of
``LAYER_WIDTH`` nodes, every node with 2 to 4 edges to distinct nodes of the next layer. Nodes are
named by two characters, a letter and a digit (``k3``), assigned at random, so a name says nothing
about a node's layer. The graph is not in the prompt: supervised warm-up learns it from worked
paths, and RL asks for (source, target) pairs that warm-up never showed.

Problem and response::

    Path k3>b7.          (problem: the source, then the target)
    k3>q1>z0>b7          (response and answer: the whole path, node names joined by '>')

A response is right when, stripped of surrounding whitespace, it is exactly such a hop sequence: it
starts at the source, ends at the target, every hop is an edge of the graph and no node repeats;
nothing may come before or after it. Every path between two nodes has as many hops as their layer
distance (``MIN_HOPS`` to ``MAX_HOPS`` here), so a wrong path is a wrong branch (a node from which
the target cannot be reached, or a hop that is not an edge), never a wrong length. Near the target
most nodes have a branch that leads nowhere; far from it, most branches still reach it.

The splits hold disjoint (source, target) pairs. ``sft`` has up to ``SFT_PATHS_PER_PAIR`` distinct
paths per pair (its ``solution`` is the path, as in ``asymrl.toy.task``); train / validation / test
have one row per pair, its ``answer`` one valid path drawn uniformly (the reward accepts any valid
path). Every row also carries ``source``, ``target``, ``hops``, ``num_paths`` (distinct valid paths)
and ``graph_seed`` (the reward rebuilds the graph from it in its worker process).
"""

from __future__ import annotations

import functools
import json
import random
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from asymrl.toy import cache_root, ensure_generated

VERSION = "v1"
LAYERS = 13
LAYER_WIDTH = 12
OUT_DEGREES = (2, 3, 4)
MIN_HOPS, MAX_HOPS = 3, 8
SFT_PATHS_PER_PAIR = 4
# (source, target) pairs per split; sft takes every eligible pair left over.
HELD_OUT_PAIRS = {"test": 2000, "validation": 1000, "train": 1000}
SPLITS = ("sft", "train", "validation", "test")

NODE_NAMES = tuple(letter + digit for letter in string.ascii_lowercase for digit in string.digits)
PATH_PATTERN = re.compile(r"[a-z][0-9](?:>[a-z][0-9])+")


@dataclass(frozen=True, eq=False)
class Graph:
    """Node names layer by layer (a topological order) and each node's successors. Compared and
    hashed by identity, so that per-graph results can be cached."""

    seed: int
    layers: tuple[tuple[str, ...], ...]
    successors: dict[str, tuple[str, ...]]
    layer_of: dict[str, int]


def build_graph(seed: int) -> Graph:
    """The layered graph of ``seed``: random names, each node linked to 2-4 nodes of the next layer."""
    rng = random.Random(seed)
    names = rng.sample(NODE_NAMES, LAYERS * LAYER_WIDTH)
    layers = tuple(tuple(names[i * LAYER_WIDTH : (i + 1) * LAYER_WIDTH]) for i in range(LAYERS))
    successors = {}
    for index, layer in enumerate(layers):
        for node in layer:
            if index + 1 == LAYERS:
                successors[node] = ()
            else:
                successors[node] = tuple(sorted(rng.sample(layers[index + 1], rng.choice(OUT_DEGREES))))
    layer_of = {node: index for index, layer in enumerate(layers) for node in layer}
    return Graph(seed, layers, successors, layer_of)


@functools.lru_cache(maxsize=4)
def graph_for_seed(seed: int) -> Graph:
    """``build_graph(seed)``, built once per process (the reward scores many responses per graph)."""
    return build_graph(seed)


@functools.lru_cache(maxsize=1024)
def path_counts_to(graph: Graph, target: str) -> Mapping[str, int]:
    """Number of distinct paths from each node to ``target`` (nodes with none are left out); cached,
    as every count, draw and enumeration of paths to ``target`` starts from it."""
    counts = {target: 1}
    for layer in reversed(graph.layers[: graph.layer_of[target]]):
        for node in layer:
            total = sum(counts.get(successor, 0) for successor in graph.successors[node])
            if total:
                counts[node] = total
    return MappingProxyType(counts)


def count_paths(graph: Graph, source: str, target: str) -> int:
    """Number of distinct paths from ``source`` to ``target`` (0 when unreachable)."""
    return path_counts_to(graph, target).get(source, 0) if source != target else 0


def all_paths(graph: Graph, source: str, target: str) -> Iterator[tuple[str, ...]]:
    """Every path from ``source`` to ``target``, in lexicographic order of node names."""
    counts = path_counts_to(graph, target)

    def extend(path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        if path[-1] == target:
            yield path
            return
        for successor in graph.successors[path[-1]]:
            if successor in counts:
                yield from extend(path + (successor,))

    if source != target and source in counts:
        yield from extend((source,))


def sample_path(graph: Graph, source: str, target: str, rng: random.Random) -> tuple[str, ...]:
    """One path from ``source`` to ``target`` drawn uniformly over all of them: each next node is
    chosen with probability proportional to the number of paths that continue through it."""
    counts = path_counts_to(graph, target)
    if source == target or source not in counts:
        raise ValueError(f"no path from {source} to {target}")
    path = [source]
    while path[-1] != target:
        choices = [successor for successor in graph.successors[path[-1]] if successor in counts]
        path.append(rng.choices(choices, weights=[counts[c] for c in choices])[0])
    return tuple(path)


def is_valid_path(graph: Graph, path: Sequence[str], source: str, target: str) -> bool:
    """Whether ``path`` (node names) goes from ``source`` to ``target`` by edges, repeating no node."""
    return (len(path) >= 2 and path[0] == source and path[-1] == target and len(set(path)) == len(path)
            and all(b in graph.successors.get(a, ()) for a, b in zip(path, path[1:])))


def format_path(path: Sequence[str]) -> str:
    return ">".join(path)


def parse_path(response: str) -> list[str] | None:
    """Node names of a response written as ``k3>q1>b7`` (surrounding whitespace allowed), else None."""
    text = response.strip()
    return text.split(">") if PATH_PATTERN.fullmatch(text) else None


def paths_reward(response: str, example: dict) -> float:
    """1.0 iff ``response`` is a valid path from ``example['source']`` to ``example['target']`` in
    the graph of ``example['graph_seed']``, with nothing before or after it; else 0.0."""
    path = parse_path(response)
    graph = graph_for_seed(int(example["graph_seed"]))
    return float(path is not None and is_valid_path(graph, path, example["source"], example["target"]))


def problem_text(source: str, target: str) -> str:
    return f"Path {source}>{target}."


def eligible_pairs(graph: Graph) -> list[tuple[str, str]]:
    """(source, target) pairs ``MIN_HOPS`` to ``MAX_HOPS`` layers apart with at least one path, in
    topological order."""
    pairs = []
    for target_layer in range(MIN_HOPS, LAYERS):
        for target in graph.layers[target_layer]:
            counts = path_counts_to(graph, target)
            for source_layer in range(max(0, target_layer - MAX_HOPS), target_layer - MIN_HOPS + 1):
                pairs.extend((source, target) for source in graph.layers[source_layer] if source in counts)
    return pairs


def split_pairs(pairs: list[tuple[str, str]], seed: int) -> dict[str, list[tuple[str, str]]]:
    """Disjoint pair sets per split: the held-out splits drawn at random, sft the rest."""
    shuffled = list(pairs)
    random.Random(seed).shuffle(shuffled)
    if len(shuffled) <= sum(HELD_OUT_PAIRS.values()):
        raise ValueError(f"{len(shuffled)} eligible pairs cannot fill {HELD_OUT_PAIRS} and leave some for sft")
    splits, start = {}, 0
    for split, size in HELD_OUT_PAIRS.items():
        splits[split] = shuffled[start : start + size]
        start += size
    splits["sft"] = shuffled[start:]
    return splits


def distinct_paths(graph: Graph, source: str, target: str, limit: int, rng: random.Random) -> list[tuple[str, ...]]:
    """Up to ``limit`` distinct paths: all of them when there are that few, else uniform draws."""
    if count_paths(graph, source, target) <= limit:
        return list(all_paths(graph, source, target))
    found: list[tuple[str, ...]] = []
    while len(found) < limit:
        path = sample_path(graph, source, target, rng)
        if path not in found:
            found.append(path)
    return found


def make_row(graph: Graph, row_id: str, path: tuple[str, ...]) -> dict:
    """One problem row: the path is the answer and the worked solution."""
    source, target = path[0], path[-1]
    text = format_path(path)
    return {"id": row_id, "problem": problem_text(source, target), "answer": text, "solution": text,
            "source": source, "target": target, "hops": len(path) - 1,
            "num_paths": count_paths(graph, source, target), "graph_seed": graph.seed}


def split_rows(graph: Graph, split: str, pairs: list[tuple[str, str]], rng: random.Random) -> list[dict]:
    """The rows of a split: one per pair, or up to ``SFT_PATHS_PER_PAIR`` distinct paths per pair for sft."""
    per_pair = SFT_PATHS_PER_PAIR if split == "sft" else 1
    paths = [path for source, target in pairs for path in distinct_paths(graph, source, target, per_pair, rng)]
    return [make_row(graph, f"paths-{split}-{index}", path) for index, path in enumerate(paths)]


def write_splits(out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Write ``<split>.jsonl`` for sft / train / validation / test from the graph of ``seed``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    graph = build_graph(seed)
    pairs = split_pairs(eligible_pairs(graph), seed)
    rng = random.Random(seed + 1)
    files = {}
    for split in SPLITS:
        files[split] = out_dir / f"{split}.jsonl"
        with files[split].open("w") as handle:
            for row in split_rows(graph, split, pairs[split], rng):
                handle.write(json.dumps(row) + "\n")
    return files


def data_dir(seed: int = 0) -> Path:
    """The cache folder of the splits of ``seed``."""
    return cache_root() / f"paths-{VERSION}-seed{seed}" / "data"


def ensure_paths_data(seed: int = 0) -> dict[str, Path]:
    """The task's sft / train / validation / test JSONL files, generated into the cache on first use."""
    return ensure_generated(data_dir(seed), SPLITS, lambda folder: write_splits(folder, seed))
