"""Every metric sweeplab logs or records, and which way is better: the one place that knows
(sweeps, tables and cross-validation read the direction here instead of guessing it from a name)."""

from __future__ import annotations

from dataclasses import dataclass

MAXIMIZE, MINIMIZE = "maximize", "minimize"


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    per_epoch: bool = False  # logged after every training epoch, so a pruner can follow it
    in_results: bool = True  # a field of results.json (False: computed from its per-epoch history)

    @property
    def direction(self) -> str:
        return MAXIMIZE if self.higher_is_better else MINIMIZE

    @property
    def bounds(self) -> tuple[float, float] | None:
        """Where its values lie: [0, 1] for an accuracy (intervals are clipped to it), None when unbounded."""
        return (0.0, 1.0) if self.name.endswith("_acc") or "_acc_" in self.name else None


TRAIN_LOSS, TRAIN_ACC = Metric("train_loss", False, True), Metric("train_acc", True, True)
VAL_LOSS, VAL_ACC = Metric("val_loss", False, True), Metric("val_acc", True, True)
TEST_LOSS, TEST_ACC = Metric("test_loss", False), Metric("test_acc", True)
BEST_VAL_ACC, BEST_VAL_LOSS = Metric("best_val_acc", True), Metric("best_val_loss", False)
VAL_ACC_AT_BEST_EPOCH = Metric("val_acc_at_best_epoch", True)
BEST_EPOCH, EPOCHS_RUN = Metric("best_epoch", False), Metric("epochs_run", False)
DURATION_S, NUM_PARAMS = Metric("duration_s", False), Metric("num_params", False)
EPOCH_S = Metric("epoch_s", False, in_results=False)  # the mean training epoch time, from history rows' epoch_s

METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        TRAIN_LOSS,
        TRAIN_ACC,
        VAL_LOSS,
        VAL_ACC,
        TEST_LOSS,
        TEST_ACC,
        BEST_VAL_ACC,
        BEST_VAL_LOSS,
        VAL_ACC_AT_BEST_EPOCH,
        BEST_EPOCH,
        EPOCHS_RUN,
        DURATION_S,
        NUM_PARAMS,
        EPOCH_S,
    )
}
PER_EPOCH = tuple(name for name, metric in METRICS.items() if metric.per_epoch)
# what a run's results.json reports, in the order tables show them
RESULT_METRICS = tuple(name for name, metric in METRICS.items() if not metric.per_epoch and metric.in_results)
# the headline numbers of a run: tables, TensorBoard's HParams tab, a trial's user attributes
HEADLINE = ("test_acc", "test_loss", "best_val_acc", "best_val_loss", "best_epoch", "epochs_run", "duration_s")


def metric(name: str) -> Metric:
    """The metric called ``name``; a KeyError names the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(METRICS)}") from None


def is_better(name: str, a: float, b: float) -> bool:
    return a > b if metric(name).higher_is_better else a < b
