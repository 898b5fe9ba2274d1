"""compare.py: one table over many runs, sorted by a metric, with only the hyperparameters that differ."""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

import pytest

from conftest import run_cli
from sweeplab.cli.compare import main as compare
from sweeplab.errors import UserInputError
from sweeplab.reports.run_records import NO_RESULTS, RunRecord, load_runs
from sweeplab.reports.runs_table import MeanStd, build_table, differing_hparams

LRS = ("0.1", "0.01", "0.001")
FIXED_COLUMNS = ["run", "status"]
METRICS = ["test_acc", "best_val_acc", "epochs_run", "duration_s"]


@pytest.fixture(scope="module")
def multirun(tmp_path_factory) -> tuple[Path, list[dict]]:
    """A real 3-run grid over the learning rate (one train.py -m process), and its results."""
    cwd = tmp_path_factory.mktemp("grid")
    done = run_cli(
        "train.py",
        "-m",
        "data=fake",
        "data.num_samples=256",
        "data.num_test_samples=64",
        "data.batch_size=32",
        "model=mlp",
        "trainer.max_epochs=2",
        "logger=csv",
        "progress_bar=false",
        f"optimizer.lr={','.join(LRS)}",
        cwd=cwd,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (root,) = (cwd / "outputs" / "multirun").glob("*/*")
    results = [json.loads(path.read_text()) for path in sorted(root.glob("*/results.json"))]
    assert len(results) == 3
    return root, results


def _markdown_rows(text: str) -> tuple[list[str], list[list[str]]]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    assert set("".join(cells[1])) <= set("-:"), "second line is the header rule"
    return cells[0], cells[2:]


def _best_first(results: list[dict], metric: str, higher_is_better: bool) -> list[float]:
    sign = -1 if higher_is_better else 1
    return [r["hparams"]["optimizer.lr"] for r in sorted(results, key=lambda r: sign * r[metric])]


def test_markdown_has_one_row_per_run_sorted_by_the_metric_and_only_the_differing_hparam(multirun, capsys):
    root, results = multirun
    compare([str(root)])
    header, rows = _markdown_rows(capsys.readouterr().out)
    assert header == FIXED_COLUMNS + ["optimizer.lr"] + METRICS
    assert len(rows) == 3
    lr_column, acc_column = header.index("optimizer.lr"), header.index("test_acc")
    accuracies = [float(row[acc_column]) for row in rows]
    assert accuracies == sorted(accuracies, reverse=True)
    assert [float(row[lr_column]) for row in rows] == _best_first(results, "test_acc", higher_is_better=True)
    assert {row[0] for row in rows} == {"0", "1", "2"}  # job folders, named below the multirun root


def test_csv_parses_back_with_the_values_of_results_json(multirun, capsys):
    root, results = multirun
    compare([str(root), "--format", "csv", "--metric", "best_val_loss"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3
    assert list(rows[0]) == FIXED_COLUMNS + ["optimizer.lr"] + METRICS + ["best_val_loss"]
    by_lr = {r["hparams"]["optimizer.lr"]: r for r in results}
    for row in rows:
        recorded = by_lr[float(row["optimizer.lr"])]
        assert float(row["test_acc"]) == recorded["test_acc"]
        assert float(row["best_val_loss"]) == recorded["best_val_loss"]
        assert int(row["epochs_run"]) == recorded["epochs_run"] == 2
    assert [float(row["optimizer.lr"]) for row in rows] == _best_first(results, "best_val_loss", higher_is_better=False)


def test_json_top_and_filter(multirun, capsys):
    root, results = multirun
    compare([str(root), "--format", "json", "--top", "2"])
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 2 and rows[0]["test_acc"] == max(r["test_acc"] for r in results)
    assert all(Path(row["path"], "results.json").is_file() for row in rows)

    compare([str(root), "--format", "json", "--filter", "optimizer.lr=1e-2", "--filter", "model=mlp"])
    (row,) = json.loads(capsys.readouterr().out)
    assert row["test_acc"] == next(r["test_acc"] for r in results if r["hparams"]["optimizer.lr"] == 0.01)
    assert "optimizer.lr" not in row  # one run: nothing differs


def test_the_root_script_prints_csv_and_refuses_bad_paths_in_one_line(multirun, tmp_path):
    root, _ = multirun
    done = run_cli("compare.py", str(root), "--format", "csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert len(list(csv.DictReader(io.StringIO(done.stdout)))) == 3

    missing = run_cli("compare.py", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    assert (
        missing.stderr.strip().count("\n") == 0 and "nowhere" in missing.stderr and "does not exist" in missing.stderr
    )
    (tmp_path / "empty").mkdir()
    empty = run_cli("compare.py", "empty", "--metric", "test_acc", cwd=tmp_path)
    assert empty.returncode == 2 and "holds no run" in empty.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--metric", "accuracy"], "--metric='accuracy' is invalid"),
        (["--format", "xlsx"], "--format='xlsx' is invalid"),
        (["--top", "0"], "--top=0 is invalid"),
        (["--filter", "optimizer.lr"], "KEY=VALUE"),
        (["--filter", "optimizer.rl=0.1"], "did you mean optimizer.lr"),
    ],
)
def test_bad_options_exit_2_naming_the_option(multirun, capsys, argv, message):
    root, _ = multirun
    with pytest.raises(SystemExit) as stopped:
        compare([str(root), *argv])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


# --- synthetic run folders: seeds, failures, datasets ----------------------------------------


def _write_run(
    folder: Path,
    *,
    lr: float,
    seed: int,
    test_acc: float | None,
    status: str = "completed",
    dataset: str = "fake",
    batch_size: int = 32,
) -> Path:
    folder.mkdir(parents=True)
    results = {
        "status": status,
        "dataset": dataset,
        "model": "LeNet5",
        "test_acc": test_acc,
        "best_val_acc": None if test_acc is None else test_acc / 2,
        "epochs_run": 3,
        "duration_s": 1.5,
        "seed": seed,
        "hparams": {"model": "LeNet5", "optimizer.lr": lr, "data.batch_size": batch_size, "seed": seed},
    }
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def test_group_seeds_gives_mean_std_and_count_per_config(tmp_path, capsys):
    accuracies = {0.1: [0.50, 0.56, 0.59], 0.01: [0.91, 0.93, 0.94]}
    for lr, values in accuracies.items():
        for seed, acc in enumerate(values):
            _write_run(tmp_path / f"lr{lr}_seed{seed}", lr=lr, seed=seed, test_acc=acc)

    table = build_table(load_runs([tmp_path]), group_seeds=True)
    assert [row["optimizer.lr"] for row in table.rows] == [0.01, 0.1]  # best mean first
    assert "seed" not in table.columns and table.columns[:3] == ["run", "status", "seeds"]
    for row in table.rows:
        values = accuracies[row["optimizer.lr"]]
        assert row["seeds"] == 3
        assert row["test_acc"] == MeanStd(
            pytest.approx(statistics.fmean(values)), pytest.approx(statistics.stdev(values)), 3
        )

    compare([str(tmp_path), "--group-seeds"])
    header, rows = _markdown_rows(capsys.readouterr().out)
    mean, std = statistics.fmean(accuracies[0.01]), statistics.stdev(accuracies[0.01])
    assert rows[0][header.index("test_acc")] == f"{mean:.4g} ± {std:.2g}"
    compare([str(tmp_path), "--group-seeds", "--format", "csv"])
    first = next(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert float(first["test_acc"]) == pytest.approx(mean) and float(first["test_acc_std"]) == pytest.approx(std)


def test_failed_runs_and_other_datasets_are_shown_as_such(tmp_path, capsys):
    _write_run(tmp_path / "good", lr=0.01, seed=0, test_acc=0.9)
    _write_run(tmp_path / "broken", lr=0.1, seed=0, test_acc=None, status="failed")
    _write_run(tmp_path / "mnist", lr=0.01, seed=0, test_acc=0.95, dataset="mnist")
    unfinished = tmp_path / "killed" / ".hydra"
    unfinished.mkdir(parents=True)
    (unfinished / "config.yaml").write_text("seed: 7\noptimizer:\n  lr: 0.5\n")

    compare([str(tmp_path), "--format", "json"])
    captured = capsys.readouterr()
    rows = {row["run"]: row for row in json.loads(captured.out)}
    assert set(rows) == {"good", "broken", "mnist", "killed"}
    assert rows["broken"]["status"] == "failed" and rows["broken"]["test_acc"] is None
    assert rows["killed"]["status"] == NO_RESULTS and rows["killed"]["optimizer.lr"] == 0.5
    assert (rows["mnist"]["dataset"], rows["good"]["dataset"]) == ("mnist", "fake")
    assert list(rows)[:2] == ["mnist", "good"]  # runs without the metric go last
    assert "2 datasets" in captured.err and "did not complete" in captured.err


def test_differing_hparams_counts_a_missing_key_as_different():
    a = RunRecord(Path("a"), "completed", hparams={"lr": 0.1, "bs": 32, "extra": 1})
    b = RunRecord(Path("b"), "completed", hparams={"lr": 0.1, "bs": 64})
    assert differing_hparams([a, b]) == ["bs", "extra"]
    assert differing_hparams([a, b], ignore=("extra",)) == ["bs"]
    assert differing_hparams([a]) == []


def test_a_missing_path_is_refused_before_reading_any_run(tmp_path):
    _write_run(tmp_path / "run", lr=0.1, seed=0, test_acc=0.5)
    with pytest.raises(UserInputError, match="missing.*does not exist"):
        load_runs([tmp_path / "run", tmp_path / "missing"])


# --- --where queries and seed groups -------------------------------------------------------


def _record(name: str, status: str = "completed", **values) -> RunRecord:
    hparams = {k: v for k, v in values.items() if k in ("model", "optimizer.lr", "seed")}
    results = {k: v for k, v in values.items() if k not in hparams}
    return RunRecord(Path(name), status, hparams=hparams, results=results)


QUERY_RUNS = [
    _record("a", model="lenet", **{"optimizer.lr": 0.001}, test_acc=0.99),
    _record("b", model="lenet", **{"optimizer.lr": 0.1}, test_acc=0.97),
    _record("c", model="mlp", **{"optimizer.lr": 0.001}, test_acc=0.95),
    _record("d", "failed", model="mlp", **{"optimizer.lr": 0.01}),
]


@pytest.mark.parametrize(
    "query, kept",
    [
        ("model=lenet", "ab"),
        ("model=LeNet and optimizer.lr<0.01", "a"),
        ("test_acc>0.96", "ab"),
        ("test_acc>=0.97 or model=mlp", "abcd"),
        ("model!=lenet", "cd"),
        ("status=failed", "d"),
        ("optimizer.lr in [0.001, 0.01]", "acd"),
        ("model in ['mlp']", "cd"),
        ("test_acc<1", "abc"),  # d: no test_acc
        ("model=mlp and (status=failed or test_acc>0.99)", "d"),
        ("optimizer.lr=1e-3", "ac"),
    ],
)
def test_where_keeps_the_runs_its_conditions_match(query, kept):
    from sweeplab.reports.query import select

    assert "".join(str(r.path) for r in select(QUERY_RUNS, query)) == kept


def test_where_is_applied_before_ranking_and_said_in_a_note():
    table = build_table(QUERY_RUNS, metric="test_acc", where="model=lenet")
    assert [row["run"] for row in table.rows] == ["a", "b"] and "2 of 4 runs match the filters" in table.notes


def test_seed_groups_get_intervals_and_welchs_test_of_the_best_two():
    from scipy import stats

    lenet = [0.991, 0.990, 0.992]
    mlp = [0.981, 0.983, 0.980]
    runs = [_record(f"l{i}", model="lenet", seed=i, test_acc=v) for i, v in enumerate(lenet)]
    runs += [_record(f"m{i}", model="mlp", seed=i, test_acc=v) for i, v in enumerate(mlp)]
    lines = build_table(runs, metric="test_acc", group_seeds=True).comparison
    half = stats.t.ppf(0.975, 2) * statistics.stdev(lenet) / 3**0.5
    assert lines[0] == (
        f"model=lenet: test_acc {statistics.fmean(lenet):.4f} ± {statistics.stdev(lenet):.4f} over n=3, "
        f"95% interval [{statistics.fmean(lenet) - half:.4f}, {statistics.fmean(lenet) + half:.4f}]"
    )
    p_value = stats.ttest_ind(lenet, mlp, equal_var=False).pvalue
    assert lines[2].startswith(
        f"model=lenet vs model=mlp: test_acc {statistics.fmean(lenet) - statistics.fmean(mlp):.4f} higher"
    )
    assert f"p={p_value:.3g}" in lines[2] and "significant at the 5% level: model=lenet is better" in lines[2]


def test_overlapping_seed_groups_are_said_not_to_differ():
    runs = [_record(f"l{i}", model="lenet", seed=i, test_acc=v) for i, v in enumerate([0.95, 0.97, 0.96])]
    runs += [_record(f"m{i}", model="mlp", seed=i, test_acc=v) for i, v in enumerate([0.96, 0.95, 0.97])]
    verdict = build_table(runs, metric="test_acc", group_seeds=True).comparison[-1]
    assert "not significant at the 5% level: these seeds do not tell the two apart" in verdict


def test_one_seed_per_group_gets_no_test_but_says_what_to_do():
    runs = [_record("l", model="lenet", seed=1, test_acc=0.99), _record("m", model="mlp", seed=1, test_acc=0.98)]
    lines = build_table(runs, metric="test_acc", group_seeds=True).comparison
    assert "(one seed: no interval)" in lines[0] and "train more seeds" in lines[-1]


def test_where_on_a_real_grid_lists_the_runs_it_names(multirun, capsys):
    root, results = multirun
    chosen = [r for r in results if r["hparams"]["optimizer.lr"] < float(max(LRS, key=float))]
    compare([str(root), "--where", f"model=mlp and optimizer.lr<{max(LRS, key=float)} and status=completed"])
    header, rows = _markdown_rows(capsys.readouterr().out)
    lr = header.index("optimizer.lr")
    assert sorted(float(row[lr]) for row in rows) == sorted(r["hparams"]["optimizer.lr"] for r in chosen)
