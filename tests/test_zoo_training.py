"""Every architecture trains through the real fit path on 1x28x28 and 3x32x32 inputs."""

from __future__ import annotations

import pytest

from conftest import compose_config
from sweeplab.runs.fit import fit

MODELS = [
    "softmax",
    "mlp",
    "three_layer",
    "convnet",
    "lenet",
    "alexnet",
    "vgg",
    "nin",
    "googlenet",
    "resnet",
    "torchvision",
]
SHAPES = [(1, 28), (3, 32)]


@pytest.mark.slow  # full-width AlexNet and VGG take minutes on 2 CPUs; tests/test_models.py covers every model fast
@pytest.mark.parametrize("channels, size", SHAPES, ids=["1x28x28", "3x32x32"])
@pytest.mark.parametrize("model", MODELS)
def test_every_model_survives_a_fast_dev_run(model, channels, size, tmp_path):
    cfg = compose_config(
        [
            f"model={model}",
            "data=fake",
            f"data.channels={channels}",
            f"data.size={size}",
            "data.num_samples=64",
            "data.num_test_samples=16",
            "data.batch_size=8",
            "trainer.fast_dev_run=true",
            "logger=csv",
            "progress_bar=false",
        ]
    )
    results = fit(cfg, tmp_path)
    assert results.status == "completed"
    assert results.test_size == 16 and results.num_params > 0
    assert (tmp_path / "model_summary.txt").read_text().count("\n") > 3
