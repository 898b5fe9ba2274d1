"""benchmarks/zoo.py's rows and table (the script itself trains every model: a benchmark, not a test)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[1]


def zoo_module(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import zoo

    return zoo


def test_every_model_of_the_zoo_has_a_row_and_each_variant_follows_its_model(monkeypatch):
    zoo = zoo_module(monkeypatch)
    labels = list(zoo.ROWS)
    assert [label for label in labels if label in zoo.ZOO] == list(zoo.ZOO)
    for label, (model, knobs) in zoo.VARIANTS.items():
        assert model in zoo.ZOO and knobs
        assert labels.index(label) > labels.index(model)
        between = labels[labels.index(model) + 1 : labels.index(label)]
        assert all(zoo.ROWS[other][0] == model for other in between)  # only the same model's rows in between
    assert all((REPO / "conf" / "model" / f"{model}.yaml").is_file() for model, _ in zoo.ROWS.values())


def test_the_table_names_each_rows_overrides(monkeypatch):
    zoo = zoo_module(monkeypatch)
    rows = [
        {
            "model": "softmax",
            "overrides": "",
            "params": 7850,
            "s_per_epoch": 1.42,
            "test_acc": 0.768,
            "best_val_acc": 0.7528,
            "train_size": 54000,
            "test_size": 10000,
        },
        {
            "model": "softmax",
            "overrides": "data.augment.translate=0",
            "params": 7850,
            "s_per_epoch": 0.9,
            "test_acc": 0.8992,
            "best_val_acc": 0.897,
            "train_size": 54000,
            "test_size": 10000,
        },
    ]
    text = zoo.table(rows, SimpleNamespace(epochs=1, seed=1))
    assert "1 epoch(s) on 54,000 MNIST images (seed 1), tested on 10,000" in text
    assert "| softmax | - | 7,850 | 1.4 | 0.7680 | 0.7528 |" in text
    assert "| softmax | data.augment.translate=0 | 7,850 | 0.9 | 0.8992 | 0.8970 |" in text
