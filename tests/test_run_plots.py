"""Plots in the run folder, and what TensorBoard's own readers find in a run's events."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from tensorboard import context
from tensorboard.backend.event_processing import data_provider, event_accumulator, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

from conftest import FAKE_FAST, compose_config
from sweeplab.metrics import HEADLINE
from sweeplab.reports import run_plots
from sweeplab.reports.run_plots import plot_confusion, plot_curves, plot_misclassified
from sweeplab.runs.fit import fit

PLOTS = ("curves.png", "confusion.png", "misclassified.png")
IMAGE_TAGS = {"test/confusion_matrix", "test/misclassified", "model/first_layer_kernels"}


def _tensorboard_run(tmp_path_factory, model: str):
    run_dir = tmp_path_factory.mktemp(model)
    cfg = compose_config(FAKE_FAST + [f"model={model}", "logger=tensorboard"])
    return run_dir, cfg, fit(cfg, run_dir).to_dict()


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    return _tensorboard_run(tmp_path_factory, "lenet")


def test_a_run_folder_holds_the_three_plots(lenet_run):
    run_dir, _, results = lenet_run
    assert results["status"] == "completed"
    for name in PLOTS:
        image = imread(run_dir / name)
        height, width, channels = image.shape
        assert height >= 150 and width >= 300 and channels in (3, 4), (name, image.shape)
        assert image[..., :3].std() > 0.01, f"{name} is blank"


def test_the_confusion_matrix_counts_sum_to_the_test_set_size(lenet_run):
    _, cfg, results = lenet_run
    figure = plot_confusion(results["test_confusion"], results["classes"])
    (ax,) = figure.axes  # counts are written in the cells, so no colour bar
    counts = [int(text.get_text()) for text in ax.texts]
    assert len(counts) == len(results["classes"]) ** 2
    assert sum(counts) == results["test_size"] == cfg.data.num_test_samples
    correct = round(results["test_acc"] * results["test_size"])
    assert ax.get_title().startswith(f"test confusion matrix: {correct} of {results['test_size']} correct")
    assert [t.get_text() for t in ax.get_xticklabels()] == results["classes"]


def test_curves_plot_the_history(lenet_run):
    _, _, results = lenet_run
    history = results["history"]
    loss_ax, acc_ax, lr_ax = plot_curves(history, results["best_epoch"]).axes
    lines = {line.get_label(): line for line in loss_ax.get_lines()}
    assert list(lines["train"].get_ydata()) == [row["train_loss"] for row in history]
    assert list(lines["val"].get_ydata()) == [row["val_loss"] for row in history]
    assert list(lines[f"best epoch ({results['best_epoch']})"].get_xdata()) == [results["best_epoch"]] * 2
    assert list(acc_ax.get_lines()[1].get_ydata()) == [row["val_acc"] for row in history]
    assert list(lr_ax.get_lines()[0].get_ydata()) == [row["lr"] for row in history]


def test_misclassified_grid_has_one_labelled_tile_per_image_up_to_64():
    classes = [f"class_{i}" for i in range(10)]
    wrong = [(torch.randn(1, 28, 28), i % 10, (i + 1) % 10) for i in range(70)]
    figure, layout = plot_misclassified(wrong, classes, wrong_total=70)
    assert layout.tiles == 64 and layout.rows * layout.cols >= 64
    labels = [text.get_text() for text in figure.axes[0].texts]
    assert len(labels) == 64 and labels[3] == "pred class_3\ntrue class_4"
    assert figure.texts[0].get_text() == "64 of 70 misclassified test images"
    _, layout = plot_misclassified(wrong[:5], classes)
    assert (layout.rows, layout.cols, layout.tiles) == (2, 3, 5)
    _, layout = plot_misclassified([], classes, wrong_total=0)
    assert layout.tiles == 0


def _session_groups(logdir):
    """What TensorBoard's HParams tab lists, from TensorBoard's own readers."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    hparams_context = backend_context.Context(base_plugin.TBContext(data_provider=provider, logdir=str(logdir)))
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=100, allowed_statuses=[api_pb2.STATUS_SUCCESS, api_pb2.STATUS_UNKNOWN]
    )
    return list_session_groups.Handler(context.RequestContext(), hparams_context, "", request).run().session_groups


def test_tensorboard_hparams_session_holds_the_final_metrics(lenet_run):
    run_dir, _, results = lenet_run
    (group,) = _session_groups(run_dir)
    metrics = {value.name.tag: value.value for value in group.metric_values}
    expected = {f"hp/{key}": float(results[key]) for key in HEADLINE}  # every run logs every name
    assert "hp_metric" not in metrics
    assert set(metrics) == set(expected) and {"hp/test_acc", "hp/best_val_acc"} <= set(metrics)
    for tag, value in expected.items():
        assert metrics[tag] == pytest.approx(value, rel=1e-6), tag
    assert group.hparams["status"].string_value == "completed"
    assert "ckpt_path" not in group.hparams and "trainer.accelerator" not in group.hparams  # run settings left out
    assert group.hparams["optimizer.lr"].number_value == pytest.approx(results["hparams"]["optimizer.lr"])
    assert group.hparams["model"].string_value == results["model"]
    assert group.sessions[0].status == api_pb2.STATUS_SUCCESS


def _accumulator(run_dir):
    accumulator = event_accumulator.EventAccumulator(str(run_dir), size_guidance={event_accumulator.IMAGES: 0})
    accumulator.Reload()
    return accumulator


def test_tensorboard_holds_the_plots_as_images(lenet_run):
    run_dir, _, _ = lenet_run
    accumulator = _accumulator(run_dir)
    assert set(accumulator.Tags()["images"]) >= IMAGE_TAGS
    (confusion,) = accumulator.Images("test/confusion_matrix")
    assert (confusion.height, confusion.width) == imread(run_dir / "confusion.png").shape[:2]
    (kernels,) = accumulator.Images("model/first_layer_kernels")
    assert kernels.width > 5 * 6 and kernels.height > 5  # LeNet: six 5x5 kernels, enlarged


def test_scalar_names_are_the_same_for_any_model(lenet_run, tmp_path_factory):
    run_dir, _, _ = lenet_run
    mlp_dir, _, _ = _tensorboard_run(tmp_path_factory, "mlp")
    lenet_tags, mlp_tags = (set(_accumulator(d).Tags()["scalars"]) for d in (run_dir, mlp_dir))
    assert lenet_tags == mlp_tags
    assert {"train_loss", "train_acc", "val_loss", "val_acc", "lr", "test_acc"} <= lenet_tags


# --- the RunPlots callback: what is written when, and failures ----------------------------


def test_a_plotting_error_is_a_warning_and_the_other_plots_are_still_written(tmp_path, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("no ink")

    monkeypatch.setattr(run_plots, "plot_curves", broken)
    with caplog.at_level(logging.WARNING, logger=run_plots.__name__):
        results = fit(compose_config(FAKE_FAST + ["model=mlp", "trainer.max_epochs=1"]), tmp_path)
    assert results.status == "completed"
    assert "could not write curves.png: RuntimeError: no ink" in caplog.text
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["confusion.png", "misclassified.png"]


def test_without_a_test_only_the_curves_are_drawn_and_without_the_callback_none(tmp_path):
    cfg = compose_config(FAKE_FAST + ["model=mlp", "trainer.max_epochs=1", "evaluate_test=false"])
    fit(cfg, tmp_path / "no_test")
    assert [p.name for p in (tmp_path / "no_test").glob("*.png")] == ["curves.png"]
    fit(compose_config(FAKE_FAST + ["model=mlp", "trainer.max_epochs=1", "~callbacks.run_plots"]), tmp_path / "none")
    assert not list((tmp_path / "none").glob("*.png"))


def test_curves_tolerate_epochs_without_validation():
    history = [
        {"epoch": 1, "train_loss": 2.0, "train_acc": 0.3, "lr": 0.1},
        {"epoch": 2, "train_loss": 1.0, "train_acc": 0.6, "lr": 0.0},
    ]
    figure = plot_curves(history)
    val_line = figure.axes[0].get_lines()[1]
    assert np.isnan(val_line.get_ydata()).all()
    assert figure.axes[2].get_yscale() == "linear"  # a zero learning rate cannot go on a log axis
