"""The data stage: loading with clear errors, prompts, and the resumable sampler."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asymrl.data import KNOWN_DATASETS, KNOWN_SIZES, DataError, PromptSampler, count_problems, default_local_dir, load_problems
from asymrl.prompts import render_prompt

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_with_field_mapping_and_empty_answers(tmp_path):
    path = write(tmp_path / "d.jsonl", [json.dumps({"q": "1+1?", "a": "2", "uid": 7, "level": 1}), json.dumps({"q": "x?", "a": ""}), json.dumps({"q": "y?", "a": None})])
    problems, stats = load_problems(str(path), problem_field="q", answer_field="a", id_field="uid")
    assert problems == [{"level": 1, "id": "7", "problem": "1+1?", "answer": "2"}]
    assert (stats.rows, stats.kept, stats.skipped_empty_answer) == (3, 1, 2)


def test_malformed_files_name_file_and_line(tmp_path):
    bad_json = write(tmp_path / "bad.jsonl", [json.dumps({"problem": "a", "answer": "1"}), "{not json"])
    with pytest.raises(DataError, match=r"bad.jsonl:2: invalid JSON"):
        load_problems(str(bad_json))
    missing = write(tmp_path / "missing.jsonl", [json.dumps({"question": "a", "answer": "1"})])
    with pytest.raises(DataError, match=r"missing.jsonl:1: missing field 'problem' \(fields: question, answer\)"):
        load_problems(str(missing))
    wrong_type = write(tmp_path / "type.jsonl", [json.dumps({"problem": 5, "answer": "1"})])
    with pytest.raises(DataError, match=r"type.jsonl:1: field 'problem' must be a string"):
        load_problems(str(wrong_type))
    not_object = write(tmp_path / "list.jsonl", ["[1, 2]"])
    with pytest.raises(DataError, match=r"list.jsonl:1: expected a JSON object"):
        load_problems(str(not_object))


@pytest.mark.shared_data
def test_math_train_has_two_empty_answers():
    problems, stats = load_problems("math_train", local_dir=str(SHARED))
    assert stats.rows == 7500 and stats.skipped_empty_answer == 2 and len(problems) == 7498
    math500, _ = load_problems("math500", local_dir=str(SHARED))
    assert len(math500) == 500 and all(p["answer"] for p in math500)


@pytest.mark.shared_data
def test_known_sizes_are_what_the_loader_keeps():
    assert set(KNOWN_SIZES) == set(KNOWN_DATASETS)
    assert {name: len(load_problems(name, local_dir=str(SHARED))[0]) for name in KNOWN_SIZES} == KNOWN_SIZES


def test_counting_a_known_name_reads_no_data(tmp_path):
    # The shared data is hidden here and the hub is offline: a known name is counted from KNOWN_SIZES.
    assert default_local_dir() is None
    assert count_problems("math_train") == 7498 and count_problems("math500", "test") == 500
    path = tmp_path / "mine.jsonl"
    path.write_text("".join(json.dumps({"problem": f"{i}?", "answer": str(i)}) + "\n" for i in range(3)))
    assert count_problems(str(path)) == 3
    with pytest.raises(DataError, match="cannot load 'math_train'"):  # another split than the one counted
        count_problems("math_train", "test")


def test_data_dir_variable_names_the_local_folder(tmp_path, monkeypatch):
    (tmp_path / "math500.jsonl").write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    monkeypatch.setenv("ASYMRL_DATA_DIR", str(tmp_path))
    assert default_local_dir() == tmp_path
    assert load_problems("math500")[0][0]["answer"] == "2"
    monkeypatch.setenv("ASYMRL_DATA_DIR", "")
    assert default_local_dir() is None
    with pytest.raises(DataError, match="cannot load 'math500'"):
        load_problems("math500")
    # Unset: no folder either, whatever lies beside the repository (a user's clone has nothing there).
    monkeypatch.delenv("ASYMRL_DATA_DIR")
    assert default_local_dir() is None


@pytest.mark.parametrize("suffix", ["json", "parquet"])
def test_json_and_parquet_files_load_like_jsonl(tmp_path, suffix):
    import datasets

    rows = [{"question": f"{i}+{i}?", "solution": str(2 * i), "uid": i} for i in range(5)] + [{"question": "x?", "solution": "", "uid": 9}]
    path = tmp_path / f"problems.{suffix}"
    table = datasets.Dataset.from_list(rows)
    table.to_json(str(path)) if suffix == "json" else table.to_parquet(str(path))
    problems, stats = load_problems(str(path), problem_field="question", answer_field="solution", id_field="uid")
    assert problems == [{"id": str(i), "problem": f"{i}+{i}?", "answer": str(2 * i)} for i in range(5)]
    assert (stats.rows, stats.kept, stats.skipped_empty_answer) == (6, 5, 1)


def test_offline_hub_id_gives_a_clear_error():
    with pytest.raises(DataError, match="cannot load 'no-such-org/no-such-dataset'.*JSONL copy"):
        load_problems("no-such-org/no-such-dataset")


def test_toy_source_has_its_splits():
    train, _ = load_problems("toy", "train")
    validation, _ = load_problems("toy", "validation")
    assert len(validation) >= 1000
    assert not {p["problem"] for p in train} & {p["problem"] for p in validation}


def test_render_prompt_with_and_without_chat_template():
    from asymrl.toy.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    assert render_prompt("Compute 1+2.", tokenizer, "{problem}") == "<|user|>Compute 1+2.<|assistant|>"
    assert render_prompt("Compute 1+2.", tokenizer, "Q: {problem} A:", use_chat_template=False) == "Q: Compute 1+2. A:"


def test_sampler_resume_neither_repeats_nor_skips():
    problems = [{"id": str(i)} for i in range(10)]
    reference = PromptSampler(problems, batch_size=3, seed=5)
    expected = [[p["id"] for p in reference.next_batch()] for _ in range(8)]  # crosses epochs
    sampler = PromptSampler(problems, batch_size=3, seed=5)
    seen = [[p["id"] for p in sampler.next_batch()] for _ in range(4)]
    resumed = PromptSampler(problems, batch_size=3, seed=5)
    resumed.load_state_dict(json.loads(json.dumps(sampler.state_dict())))
    seen += [[p["id"] for p in resumed.next_batch()] for _ in range(4)]
    assert seen == expected
    # Within an epoch no problem repeats; epochs are reshuffled.
    assert len({i for batch in expected[:3] for i in batch}) == 9
    assert expected[:3] != expected[3:6]
