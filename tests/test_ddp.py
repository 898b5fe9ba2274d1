"""Data-parallel training (trainer=ddp) with two CPU processes over gloo."""

from __future__ import annotations

import json

from conftest import run_cli


def test_two_ranks_see_different_batches_and_end_with_identical_weights(tmp_path):
    probe = tmp_path / "probe"
    run_dir = tmp_path / "run"
    result = run_cli(
        "train.py",
        "trainer=ddp",
        "trainer.devices=2",
        "data=fake",
        "data.num_samples=320",
        "data.num_test_samples=64",
        "data.batch_size=16",
        "model=mlp",
        "model.dropout=0.2",
        "trainer.max_epochs=2",
        "logger=csv",
        f"hydra.run.dir={run_dir}",
        "+callbacks.probe._target_=rank_probe.RankProbe",
        f"+callbacks.probe.out_dir={probe}",
        cwd=tmp_path,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((probe / f"rank_{r}.json").read_text()) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    # 288 training images, 16 per batch = 18 batches per epoch, split 9 and 9 between the ranks
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == 2 * 9
    assert ranks[0]["batches"] != ranks[1]["batches"]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "completed" and results["test_size"] == 64  # test metrics gathered from both ranks
