"""Hostile configs read back from disk (and the names that try to slip through a trusted prefix) are refused in
one line naming the key and the file, before anything they name is imported; files that existed are unchanged."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf
from PIL import Image

from conftest import FAKE_FAST, HELPERS, compose_config, run_cli
from sweeplab.config.trust import TRUSTED_TARGETS_ENV, UntrustedTarget, check_target, trusted_targets
from sweeplab.errors import UserInputError

MARKER = "MARKER"
TOUCH = "from pathlib import Path\nPath(__file__).with_name({marker!r}).touch()\n"


def base_config() -> dict:
    return OmegaConf.to_container(compose_config(FAKE_FAST), resolve=True)


def run_folder(root: Path, edit: Callable[[dict, Path], None]) -> Path:
    """A run folder (its config only: every refusal comes before its checkpoint is read) with ``edit`` applied."""
    config = base_config()
    edit(config, root)
    folder = root / "run"
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return folder


def best_yaml(root: Path, edit: Callable[[dict, Path], None]) -> Path:
    """A study's ``best.yaml`` (a resolved config plus its ``hydra`` settings) with ``edit`` applied."""
    config = {**base_config(), "hydra": {"run": {"dir": str(root / "retrained")}}}
    edit(config, root)
    study = root / "study"
    study.mkdir()
    (study / "best.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return study


def evil_module(root: Path, name: str = "evil") -> None:
    """``evil.py`` in the working folder: were it imported, ``MARKER`` would appear."""
    (root / f"{name}.py").write_text(TOUCH.format(marker=MARKER) + "class Thing:\n    pass\n")


def set_key(dotted: str, value) -> Callable[[dict, Path], None]:
    def edit(config: dict, root: Path) -> None:
        evil_module(root)
        *parents, leaf = dotted.split(".")
        node = config
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    return edit


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def retrain(study: Path) -> list[str]:
    return ["train.py", "--config-path", str(study), "--config-name", "best"]


# (case, how the workspace is made -> the command and its arguments, what the one error line holds)
CASES = {
    "best.yaml with a foreign data target, retrained": (
        lambda root: retrain(best_yaml(root, set_key("data._target_", "os.system"))),
        ["data._target_='os.system'", "study/best.yaml"],
    ),
    "best.yaml with a Hydra callback Hydra itself would build": (
        lambda root: retrain(best_yaml(root, set_key("hydra.callbacks.evil._target_", "evil.Thing"))),
        ["hydra.callbacks.evil._target_='evil.Thing'", "study/best.yaml"],
    ),
    "best.yaml whose logging config names a handler class": (
        lambda root: retrain(best_yaml(root, set_key("hydra.job_logging.handlers.console.class", "evil.Thing"))),
        ["hydra.job_logging.handlers.console.class='evil.Thing'", "study/best.yaml"],
    ),
    "best.yaml whose logging config imports a module through ext://": (
        lambda root: retrain(best_yaml(root, set_key("hydra.job_logging.handlers.console.stream", "ext://evil.x"))),
        ["hydra.job_logging.handlers.console.stream='evil.x'", "study/best.yaml"],
    ),
    "a nested target inside an allowed node's argument": (
        lambda root: [
            "visualize.py",
            str(run_folder(root, set_key("model.activation", {"_target_": "os.system", "command": f"touch {MARKER}"}))),
        ],
        ["model.activation._target_='os.system'", "run/.hydra/config.yaml"],
    ),
    "builtins.eval as the data module": (
        lambda root: ["predict.py", str(run_folder(root, set_key("data._target_", "builtins.eval"))), "x.png"],
        ["data._target_='builtins.eval'", "run/.hydra/config.yaml"],
    ),
    "os.system as the optimizer": (
        lambda root: ["visualize.py", str(run_folder(root, set_key("optimizer._target_", "os.system")))],
        ["optimizer._target_='os.system'", "run/.hydra/config.yaml"],
    ),
    "an unknown class whose module sits in the working folder": (
        lambda root: ["visualize.py", str(run_folder(root, set_key("model._target_", "evil.Thing")))],
        ["model._target_='evil.Thing'", "run/.hydra/config.yaml", TRUSTED_TARGETS_ENV],
    ),
    "an empty segment to slip past a prefix": (
        lambda root: [
            "visualize.py",
            str(run_folder(root, set_key("model._target_", "sweeplab..models.lenet.LeNet5"))),
        ],
        ["model._target_='sweeplab..models.lenet.LeNet5'", "public identifiers"],
    ),
    "a dunder path below a trusted prefix": (
        lambda root: [
            "visualize.py",
            str(run_folder(root, set_key("optimizer._target_", "torch.optim.Adam.__init__.__globals__"))),
        ],
        ["optimizer._target_='torch.optim.Adam.__init__.__globals__'", "public identifiers"],
    ),
    "a trusted prefix reaching torch.hub through a module's imports": (
        lambda root: [
            "visualize.py",
            str(run_folder(root, set_key("model._target_", "torch.optim.optimizer.torch.hub.load"))),
        ],
        ["model._target_='torch.optim.optimizer.torch.hub.load'", "torch.hub", "run/.hydra/config.yaml"],
    ),
    "the same escape on the command line": (
        lambda root: [
            "train.py",
            *FAKE_FAST,
            "optimizer._target_=torch.optim.optimizer.torch.hub.load",
            f"hydra.run.dir={root / 'new_run'}",
        ],
        ["optimizer._target_='torch.optim.optimizer.torch.hub.load'", "torch.hub"],
    ),
    "a target that is not a string": (
        lambda root: ["visualize.py", str(run_folder(root, set_key("model._target_", ["os", "system"])))],
        ["model._target_=['os', 'system']", "run/.hydra/config.yaml"],
    ),
    "an environment lookup in a stored config": (
        lambda root: ["visualize.py", str(run_folder(root, set_key("data.data_dir", "${oc.env:HOME}")))],
        ["data.data_dir='${oc.env:HOME}'", "run/.hydra/config.yaml", "calls a resolver"],
    ),
    "a resolver not sweeplab's own in a stored config": (
        lambda root: ["predict.py", str(run_folder(root, set_key("notes", "${oc.decode:${oc.env:HOME}}"))), "x.png"],
        ["notes='${oc.decode:${oc.env:HOME}}'", "run/.hydra/config.yaml", "calls a resolver"],
    ),
    "a torchvision model name that is a callable's path": (
        lambda root: [
            "train.py",
            *FAKE_FAST,
            "model=torchvision",
            "model.name=torch.hub.load",
            f"hydra.run.dir={root / 'new_run'}",
        ],
        ["model.name='torch.hub.load'", "is not one of alexnet"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_hostile_config_is_refused_in_one_line(case: str, tmp_path: Path) -> None:
    make, expected = CASES[case]
    evil_module(tmp_path)
    Image.new("L", (28, 28), 128).save(tmp_path / "x.png")  # predict.py reads its images first
    command = make(tmp_path)
    before = checksums(tmp_path)
    done = run_cli(*command, cwd=tmp_path, env={"PYTHONPATH": os.pathsep.join([str(HELPERS), str(tmp_path)])})
    assert done.returncode == 2, (done.stdout[-1500:], done.stderr[-1500:])
    assert "Traceback" not in done.stdout + done.stderr
    errors = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: "), done.stderr
    for text in expected:
        assert text in errors[0], errors[0]
    assert not (tmp_path / MARKER).exists(), "the config's code ran"
    after = checksums(tmp_path)
    assert {name: after.get(name) for name in before} == before
    assert not (tmp_path / "new_run").exists() and not (tmp_path / "retrained").exists()


EXTRA_CALLBACK = "import lightning.pytorch as pl\n\n\nclass Noop(pl.Callback):\n    pass\n"


def test_the_environment_variable_trusts_one_extra_class(tmp_path: Path) -> None:
    """SWEEPLAB_TRUSTED_TARGETS=tiny_extra.Noop: that class is built (the run completes); without it, refused."""
    (tmp_path / "tiny_extra.py").write_text(EXTRA_CALLBACK)
    pythonpath = os.pathsep.join([str(HELPERS), str(tmp_path)])
    args = [*FAKE_FAST, "trainer.max_epochs=1", "+callbacks.extra._target_=tiny_extra.Noop"]
    refused = run_cli(
        "train.py", *args, f"hydra.run.dir={tmp_path / 'refused'}", cwd=tmp_path, env={"PYTHONPATH": pythonpath}
    )
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "callbacks.extra._target_='tiny_extra.Noop' cannot be imported" in refused.stderr
    assert not (tmp_path / "refused").exists()
    trusted = run_cli(
        "train.py",
        *args,
        f"hydra.run.dir={tmp_path / 'trusted'}",
        cwd=tmp_path,
        env={"PYTHONPATH": pythonpath, TRUSTED_TARGETS_ENV: "tiny_extra.Noop"},
    )
    assert trusted.returncode == 0, trusted.stderr[-1500:]
    assert (tmp_path / "trusted" / "results.json").is_file()


def test_prefix_rule(monkeypatch) -> None:
    """What a prefix allows: names whose every segment is public, defined below it; exact names only as named."""
    monkeypatch.setenv(TRUSTED_TARGETS_ENV, "mylab.models.,mylab.extra.Thing")
    assert "torch.optim." in trusted_targets().prefixes and "sweeplab.models.lenet.LeNet5" in trusted_targets().names
    for allowed in ("torch.optim.Adamax", "torch.optim.lr_scheduler.LambdaLR", "mylab.models.Net", "mylab.extra.Thing"):
        check_target("k._target_", allowed)
    for refused in (
        "mylab.extra.Other",
        "mylab.models",
        "mylab.modelsX.Net",
        "os.system",
        "sweeplab.files.write_text_atomic",
        "torch.optim._functional.adam",
        "torch.optim.Adam.__call__",
        "torch.optim..Adam",
        "torch.optim.class.X",
        "",
        "torch.optim.Adam ",
    ):
        with pytest.raises(UntrustedTarget):
            check_target("k._target_", refused)
    from sweeplab.runs.build import node_target

    assert node_target("optimizer", {"_target_": "torch.optim.Adamax"}).__name__ == "Adamax"
    with pytest.raises(UserInputError, match="torch.hub"):
        node_target("optimizer", {"_target_": "torch.optim.optimizer.torch.hub.load"})
