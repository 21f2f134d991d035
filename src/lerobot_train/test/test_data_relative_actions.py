"""Relative-action statistics (lerobot_dataset.relative_actions and `lerobot-dataset recompute-stats
--relative-action`): against a direct numpy computation and against upstream's definition run on upstream's
own statistics class (oracle)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import data_testlib as tl  # noqa: E402
from oracle import synthetic_episodes as syn  # noqa: E402

from lerobot_dataset import relative_actions as rel  # noqa: E402
from lerobot_dataset.cli import main as dataset_cli  # noqa: E402

NAMES = [f"{m}.pos" for m in syn.MOTORS]


def episode_arrays() -> tuple[list[np.ndarray], list[np.ndarray]]:
    states, actions = [], []
    for ep, n in enumerate(syn.EPISODE_LENGTHS):
        s, a = zip(*(syn.joint_values(ep, f) for f in range(n)))
        states.append(np.stack(s))
        actions.append(np.stack(a))
    return states, actions


def direct_rows(chunk: int, relative: np.ndarray) -> np.ndarray:
    """The definition, written out with loops: every whole chunk of every episode, action[t+k] - state[t]."""
    states, actions = episode_arrays()
    rows = []
    for s, a in zip(states, actions):
        for t in range(len(a) - chunk + 1):
            for k in range(chunk):
                rows.append(np.where(relative, a[t + k].astype(np.float64) - s[t].astype(np.float64), a[t + k]))
    return np.array(rows)


def test_mask_matches_names_case_insensitively_and_by_substring():
    assert rel.relative_action_mask(NAMES, 6, ["gripper"]).tolist() == [True] * 5 + [False]
    assert rel.relative_action_mask(NAMES, 6, ["WRIST"]).tolist() == [True, True, True, False, False, True]
    assert rel.relative_action_mask(NAMES, 6, []).all()
    assert rel.relative_action_mask(None, 6, ["gripper"]).all(), "without names every dimension is relative"


def test_chunks_stay_inside_episodes():
    starts = rel.valid_chunk_starts(np.array([0, 5, 8]), np.array([5, 8, 20]), 4)
    assert starts.tolist() == [0, 1] + list(range(8, 17))  # the 3-frame episode has no whole chunk


@pytest.mark.parametrize("chunk,exclude", [(10, ["gripper"]), (1, []), (9, ["shoulder", "gripper"])])
def test_stats_equal_a_direct_numpy_computation(chunk, exclude):
    relative = rel.relative_action_mask(NAMES, 6, exclude)
    expected = direct_rows(chunk, relative)
    states, actions = episode_arrays()
    bounds = np.cumsum([0] + syn.EPISODE_LENGTHS)
    stats = rel.relative_action_stats(np.concatenate(actions), np.concatenate(states), bounds[:-1], bounds[1:], chunk, relative)
    assert stats["count"].tolist() == [len(expected)]
    np.testing.assert_allclose(stats["min"], expected.min(axis=0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(stats["max"], expected.max(axis=0), rtol=0, atol=1e-9)
    np.testing.assert_allclose(stats["mean"], expected.mean(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(stats["std"], expected.std(axis=0), rtol=1e-7, atol=1e-9)
    # Quantiles come from a 5000-bin histogram: q lies in the bin of the sample of rank ceil(q * count).
    bin_width = (expected.max(axis=0) - expected.min(axis=0)) / 5000
    ordered = np.sort(expected, axis=0)
    for key, q in zip(("q01", "q10", "q50", "q90", "q99"), (0.01, 0.10, 0.50, 0.90, 0.99)):
        sample = ordered[max(int(np.ceil(q * len(expected))) - 1, 0)]
        assert np.all(np.abs(stats[key] - sample) <= bin_width + 1e-9), f"{key}: {stats[key]} vs sample {sample}"
    if not relative[5]:  # an excluded joint keeps absolute values
        assert stats["min"][5] >= 10 and stats["max"][5] <= 90


def test_bad_inputs_are_named():
    a = np.zeros((10, 6), dtype=np.float32)
    with pytest.raises(ValueError, match="at least as many"):
        rel.relative_action_stats(a, np.zeros((10, 4)), np.array([0]), np.array([10]), 3, np.ones(6, bool))
    with pytest.raises(ValueError, match="chunk_size=11"):
        rel.relative_action_stats(a, a, np.array([0]), np.array([10]), 11, np.ones(6, bool))


@pytest.fixture()
def dataset_copy(tmp_path) -> Path:
    dst = tmp_path / "ds"
    shutil.copytree(tl.our_dataset(), dst)
    return dst


def test_cli_writes_relative_action_stats_and_keeps_the_rest(dataset_copy, tmp_path, capsys):
    plain = tmp_path / "plain"
    assert dataset_cli(["recompute-stats", str(dataset_copy), "--output", str(plain), "--quiet"]) == 0
    assert dataset_cli(["recompute-stats", str(dataset_copy), "--relative-action", "--chunk-size", "10",
                        "--exclude-joints", "gripper", "--quiet"]) == 0
    assert "5/6 dimensions relative" in capsys.readouterr().out
    got = json.loads((dataset_copy / "meta/stats.json").read_text())
    want, mask = rel.compute_dataset_relative_action_stats(dataset_copy, 10, ["gripper"])
    assert mask.tolist() == [True] * 5 + [False]
    for stat, value in want.items():
        np.testing.assert_allclose(got["action"][stat], value, rtol=1e-12, err_msg=stat)
    others = json.loads((plain / "meta/stats.json").read_text())
    assert {k: v for k, v in got.items() if k != "action"} == {k: v for k, v in others.items() if k != "action"}
    assert got["action"] != others["action"]


def test_cli_default_is_upstreams_chunk_50_and_gripper(tmp_path, capsys):
    # Upstream's default chunk size (50) is longer than these episodes: the command says so and changes nothing.
    dst = tmp_path / "ds"
    shutil.copytree(tl.our_dataset(), dst)
    before = (dst / "meta/stats.json").read_bytes()
    assert dataset_cli(["recompute-stats", str(dst), "--relative-action", "--quiet"]) == 1
    assert "chunk_size=50" in capsys.readouterr().err
    assert (dst / "meta/stats.json").read_bytes() == before


def test_cli_errors(dataset_copy, capsys):
    before = (dataset_copy / "meta/stats.json").read_bytes()
    assert dataset_cli(["recompute-stats", str(dataset_copy), "--chunk-size", "5"]) == 2
    assert "need --relative-action" in capsys.readouterr().err
    assert dataset_cli(["recompute-stats", str(dataset_copy), "--relative-action", "--chunk-size", "0"]) == 2
    assert dataset_cli(["recompute-stats", str(dataset_copy), "--relative-action", "--chunk-size", "5",
                        "--exclude-joints", "griper"]) == 1
    assert "griper" in capsys.readouterr().err
    assert (dataset_copy / "meta/stats.json").read_bytes() == before, "a refused command changes nothing"


@pytest.mark.oracle
@pytest.mark.slow
def test_stats_equal_upstreams_definition_on_upstreams_statistics_class(tmp_path):
    from oracle import oracle_env

    root = oracle_env.upstream_dataset("libsvtav1")
    out = tmp_path / "rel.json"
    oracle_env.run_oracle("relative_action_stats_upstream.py", str(root), "10", str(out), "gripper")
    theirs = json.loads(out.read_text())
    ours, _ = rel.compute_dataset_relative_action_stats(root, 10, ["gripper"])
    n_chunks = sum(max(0, n - 10 + 1) for n in syn.EPISODE_LENGTHS)
    assert theirs["__num_chunks__"] == n_chunks
    assert ours["count"].tolist() == theirs["count"] == [n_chunks * 10]
    # upstream works in float32, we in float64 from the same float32 values
    for stat in ("min", "max", "mean", "std"):
        np.testing.assert_allclose(ours[stat], theirs[stat], rtol=2e-6, atol=1e-5, err_msg=stat)
    width = (np.array(theirs["max"]) - np.array(theirs["min"])) / 5000
    for q in ("q01", "q10", "q50", "q90", "q99"):
        assert np.all(np.abs(ours[q] - np.array(theirs[q])) <= width + 1e-5), q
