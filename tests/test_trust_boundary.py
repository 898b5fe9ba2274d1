"""A run folder someone sends you is data: its ``.hydra/config.yaml`` builds only targets sweeplab trusts.

One real tiny run is trained per module; each crafted folder is a copy of it whose config names code
(``subprocess.run``, ``torch.hub.load`` of the folder's own ``hubconf.py``, an unknown ``evil.Thing``
whose module sits in the folder and in the working directory). Each is opened with every reader:
nothing runs (no marker file), each refusal is one line naming the key and the file, exit code 2.
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

from conftest import REPO, run_cli

RUN = [
    "data=fake",
    "data.num_samples=128",
    "data.num_test_samples=32",
    "data.batch_size=32",
    "trainer.max_epochs=1",
    "logger=csv",
    "progress_bar=false",
]
MARKER = "MARKER"


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("trust")
    done = run_cli("train.py", *RUN, f"hydra.run.dir={root / 'run'}", cwd=root)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "run"


def python_touching(marker: Path) -> str:
    return f"from pathlib import Path\nPath({str(marker)!r}).touch()\n"


def crafted(trained_run: Path, parent: Path, case: str) -> tuple[Path, str, Path]:
    """A copy of the trained run whose config names code; ``(run folder, key refused, marker)``."""
    run_dir = parent / f"hostile_{case}"
    shutil.copytree(trained_run, run_dir)
    marker = parent / MARKER
    config_path = run_dir / ".hydra" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    if case == "subprocess":
        config["data"] = {"_target_": "subprocess.run", "args": ["touch", str(marker)]}
        key = "data._target_"
    elif case == "hub":
        (run_dir / "hubconf.py").write_text(python_touching(marker) + "def x(**kwargs):\n    return None\n")
        config["model"] = {"_target_": "torch.hub.load", "repo_or_dir": str(run_dir), "source": "local", "model": "x"}
        key = "model._target_"
    else:
        for folder in (run_dir, parent):
            (folder / "evil.py").write_text(python_touching(marker) + "class Thing:\n    pass\n")
        config["model"] = {"_target_": "evil.Thing", "_partial_": True}
        key = "model._target_"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    return run_dir, key, marker


def checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def assert_one_line_refusal(done, key: str, config_path: Path) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout[-1500:], done.stderr[-1500:])
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert f"{key}=" in errors[0] and str(config_path) in errors[0] and "SWEEPLAB_TRUSTED_TARGETS" in errors[0]


CASES = ["subprocess", "hub", "unknown_class"]


@pytest.mark.parametrize("case", CASES)
def test_crafted_run_folders_run_no_code(trained_run: Path, tmp_path: Path, case: str, monkeypatch) -> None:
    """predict.py, visualize.py, train.py resume=true and sweeplab.load_run refuse the folder in one line naming
    the key and the file; compare.py shows it without building anything; no marker appears, no file changes."""
    run_dir, key, marker = crafted(trained_run, tmp_path, case)
    config_path = run_dir / ".hydra" / "config.yaml"
    image = tmp_path / "img.png"
    Image.new("L", (28, 28), 128).save(image)
    before = checksums(tmp_path)

    for script, args in (
        ("predict.py", [str(run_dir), str(image)]),
        ("visualize.py", [str(run_dir)]),
        ("train.py", [*RUN, "resume=true", f"hydra.run.dir={run_dir}"]),
    ):
        done = run_cli(script, *args, cwd=tmp_path)
        assert not marker.exists(), f"{script} ran the folder's code"
        assert_one_line_refusal(done, key, config_path)

    shown = run_cli("compare.py", str(tmp_path), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-1500:]
    assert run_dir.name in shown.stdout and "Traceback" not in shown.stderr
    assert not marker.exists()

    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # evil.py importable: were it imported, the marker would appear
    from sweeplab import load_run
    from sweeplab.errors import UserInputError

    with pytest.raises(UserInputError) as refused:
        load_run(run_dir)
    assert f"{key}=" in str(refused.value) and str(config_path) in str(refused.value)
    assert not marker.exists() and "evil" not in sys.modules
    assert checksums(tmp_path) == before


def test_the_untouched_run_still_opens(trained_run: Path, tmp_path: Path) -> None:
    """The boundary refuses only what is foreign: the run itself predicts (its targets are conf/'s)."""
    image = tmp_path / "img.png"
    Image.new("L", (28, 28), 128).save(image)
    done = run_cli("predict.py", str(trained_run), str(image), cwd=REPO)
    assert done.returncode == 0, done.stderr[-1500:]
    assert "img.png" in done.stdout
