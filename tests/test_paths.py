"""The path-finding toy task: graph and splits deterministic by seed, disjoint pairs, solvable
problems with several paths each, and the ``paths`` reward by hand and through the worker pool."""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys

import pytest

from asymrl import reward
from asymrl.config import RewardConfig
from asymrl.data import load_problems
from asymrl.toy.paths import (
    HELD_OUT_PAIRS, LAYER_WIDTH, LAYERS, MAX_HOPS, MIN_HOPS, Graph, all_paths, build_graph, count_paths, is_valid_path,
    parse_path, paths_reward, sample_path, write_splits,
)


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, list[dict]]:
    files = write_splits(tmp_path_factory.mktemp("paths"), seed=0)
    return {split: [json.loads(line) for line in path.read_text().splitlines()] for split, path in files.items()}


def pair_of(row: dict) -> tuple[str, str]:
    return row["source"], row["target"]


def test_graph_and_files_are_deterministic_by_seed(tmp_path, splits):
    first, second, other = build_graph(0), build_graph(0), build_graph(1)
    assert (first.layers, first.successors) == (second.layers, second.successors)
    assert (first.layers, first.successors) != (other.layers, other.successors)
    assert len({node for layer in first.layers for node in layer}) == LAYERS * LAYER_WIDTH
    assert all(2 <= len(first.successors[node]) <= 4 for layer in first.layers[:-1] for node in layer)
    again = write_splits(tmp_path, seed=0)
    assert {split: [json.loads(line) for line in path.read_text().splitlines()] for split, path in again.items()} == splits


def test_splits_are_disjoint_by_pair_and_sized(splits):
    pairs = {split: {pair_of(row) for row in rows} for split, rows in splits.items()}
    for split, size in HELD_OUT_PAIRS.items():
        assert len(splits[split]) == len(pairs[split]) == size
    assert len(splits["validation"]) >= 1000 and len(splits["test"]) >= 2000
    assert len(pairs["sft"]) > 1000
    names = list(pairs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not pairs[a] & pairs[b], f"{a} and {b} share pairs"


def test_every_problem_is_solvable_and_its_answer_valid(splits):
    graph = build_graph(0)
    for rows in splits.values():
        for row in rows:
            source, target = pair_of(row)
            path = row["answer"].split(">")
            assert row["problem"] == f"Path {source}>{target}."
            assert row["solution"] == row["answer"] and row["graph_seed"] == 0
            assert is_valid_path(graph, path, source, target)
            assert row["hops"] == len(path) - 1 and MIN_HOPS <= row["hops"] <= MAX_HOPS
            assert row["num_paths"] == count_paths(graph, source, target) >= 1
            assert paths_reward(row["answer"], row) == 1.0


def test_sft_shows_distinct_paths_and_every_edge(splits):
    graph = build_graph(0)
    solutions = [row["solution"] for row in splits["sft"]]
    assert len(set(solutions)) == len(solutions)
    shown = {edge for solution in solutions for edge in zip(solution.split(">"), solution.split(">")[1:])}
    assert shown == {(node, successor) for node, successors in graph.successors.items() for successor in successors}


def test_most_problems_have_several_paths(splits):
    for split in ("train", "validation", "test"):
        counts = [row["num_paths"] for row in splits[split]]
        assert statistics.mean(counts) >= 50  # measured: 94-105
        assert statistics.median(counts) >= 10  # measured: 17-18
        assert sum(count >= 2 for count in counts) / len(counts) >= 0.9  # measured: 0.93


def test_paths_are_counted_enumerated_and_drawn_uniformly():
    graph = build_graph(0)
    source, target = next((s, t) for s in graph.layers[0] for t in graph.layers[3] if count_paths(graph, s, t) == 3)
    paths = list(all_paths(graph, source, target))
    assert len(paths) == len(set(paths)) == 3
    assert all(is_valid_path(graph, path, source, target) for path in paths)
    rng = random.Random(0)
    draws = [sample_path(graph, source, target, rng) for _ in range(3000)]
    assert set(draws) == set(paths)
    assert all(abs(draws.count(path) / 3000 - 1 / 3) < 0.04 for path in paths)
    unreachable = next(t for t in graph.layers[1] if t not in graph.successors[source])
    assert count_paths(graph, source, unreachable) == 0 and list(all_paths(graph, source, unreachable)) == []
    with pytest.raises(ValueError, match="no path"):
        sample_path(graph, source, unreachable, rng)


def reward_case() -> tuple[dict, list[str], str]:
    """A problem three hops long, one of its paths, and a dead end: a successor of the path's second
    node from which the target cannot be reached (a wrong branch)."""
    graph = build_graph(0)
    for source in graph.layers[0]:
        for target in graph.layers[3]:
            for path in all_paths(graph, source, target):
                dead_ends = [n for n in graph.successors[path[1]] if count_paths(graph, n, target) == 0]
                if dead_ends:
                    example = {"id": "case", "problem": f"Path {source}>{target}.", "answer": ">".join(path),
                               "source": source, "target": target, "graph_seed": 0}
                    return example, list(path), dead_ends[0]
    raise AssertionError("no three-hop case with a dead end in the graph")


def test_reward_accepts_valid_paths_only():
    graph = build_graph(0)
    example, path, dead_end = reward_case()
    source, target = path[0], path[-1]
    valid = ">".join(path)
    others = [">".join(p) for p in all_paths(graph, source, target)]
    assert all(paths_reward(other, example) == 1.0 for other in others)
    assert paths_reward(f"  {valid}\n", example) == 1.0
    assert parse_path(valid) == path
    non_edge = next(n for n in graph.layers[2] if n not in graph.successors[path[1]])
    other_source = next(n for n in graph.layers[0] if n != source)
    other_target = next(n for n in graph.layers[3] if n != target)
    assert paths_reward(">".join([source, path[1], dead_end, target]), example) == 0.0  # a wrong branch
    assert paths_reward(">".join([source, path[1], non_edge, target]), example) == 0.0  # a hop that is not an edge
    assert paths_reward(">".join([other_source, *path[1:]]), example) == 0.0  # wrong start
    assert paths_reward(">".join([*path[:-1], other_target]), example) == 0.0  # wrong end
    assert paths_reward(">".join(path[:-1]), example) == 0.0  # stops short of the target
    assert paths_reward(">".join([source, target]), example) == 0.0  # jumps to the target
    assert paths_reward(valid.replace(">", "->"), example) == 0.0  # malformed separator
    assert paths_reward(valid.replace(">", " > "), example) == 0.0  # spaces inside
    assert paths_reward(valid.upper(), example) == 0.0  # malformed names
    assert paths_reward(valid + ">", example) == 0.0  # dangling hop
    assert paths_reward("", example) == 0.0  # empty
    assert paths_reward("   ", example) == 0.0  # blank
    assert paths_reward(target, example) == 0.0  # one node
    assert paths_reward(">".join([source, path[1], source, path[1], path[2], target]), example) == 0.0  # repeated nodes
    assert paths_reward(valid + ".", example) == 0.0  # trailing junk
    assert paths_reward(valid + " done", example) == 0.0  # trailing words
    assert paths_reward(valid + ">" + target, example) == 0.0  # the target repeated
    assert paths_reward("Path: " + valid, example) == 0.0  # leading junk
    assert paths_reward(valid + "\n" + valid, example) == 0.0  # two paths


def test_a_repeated_node_is_invalid_even_along_edges():
    cyclic = Graph(seed=-1, layers=(("a0", "b0", "c0"),), successors={"a0": ("b0",), "b0": ("a0", "c0"), "c0": ()},
                   layer_of={"a0": 0, "b0": 0, "c0": 0})
    assert is_valid_path(cyclic, ["a0", "b0", "c0"], "a0", "c0")
    assert not is_valid_path(cyclic, ["a0", "b0", "a0", "b0", "c0"], "a0", "c0")


def test_reward_is_registered_and_scores_in_workers():
    assert reward.get("paths") is paths_reward
    example, path, _ = reward_case()
    valid = ">".join(path)
    responses = [valid, valid + ".", valid.replace(">", ">>"), ">".join(reversed(path))]
    with reward.build_reward(RewardConfig(name="paths", num_workers=2, timeout_s=30.0)) as scorer:
        assert scorer.name == "asymrl.toy.paths:paths_reward"
        assert scorer.score(responses, [example] * len(responses)) == [1.0, 0.0, 0.0, 0.0]
        assert scorer.counts == {"timeouts": 0, "errors": 0, "crashes": 0}


def test_load_problems_reads_the_generated_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("ASYMRL_CACHE", str(tmp_path))
    validation, stats = load_problems("paths:validation")
    assert len(validation) == stats.kept == HELD_OUT_PAIRS["validation"] >= 1000
    assert {"id", "problem", "answer", "source", "target", "num_paths", "graph_seed"} <= set(validation[0])
    assert len(load_problems("paths")[0]) == HELD_OUT_PAIRS["train"]  # the train split by default
    assert len(load_problems("paths", split="test")[0]) == HELD_OUT_PAIRS["test"]
    assert sorted(p.name for p in (tmp_path / "toy").glob("paths-*/data/*.jsonl")) == [
        "sft.jsonl", "test.jsonl", "train.jsonl", "validation.jsonl"]
    with pytest.raises(ValueError, match="the paths task has splits sft, train, validation, test, not 'dev'"):
        load_problems("paths:dev")


def test_the_task_and_its_reward_load_without_torch(tmp_path):
    """Reward workers import the reward's module under a memory cap: it must not pull in torch."""
    code = ("import sys; from asymrl import reward; from asymrl.data import load_problems; load_problems('paths:test'); "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    env = {**os.environ, "ASYMRL_CACHE": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[]"
