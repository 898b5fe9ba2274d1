"""One redaction: a secret given to sweeplab (a password in sweep.storage, a token in an override) is used,
but written into no file and printed nowhere (:mod:`sweeplab.redact`)."""

from __future__ import annotations

import uuid
from pathlib import Path

import optuna
import pytest
from test_sweep import TRIAL_OVERRIDES, write_sweep_file

from conftest import FAKE_FAST, run_cli
from sweeplab.redact import MASK, is_secret_key, redact_data, redact_text


# --- the function -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (
            "postgresql+psycopg2://user:S3cret@db.example:5432/optuna",
            "postgresql+psycopg2://user:***@db.example:5432/optuna",
        ),
        ("sweep.storage=mysql://root:pw@127.0.0.1/db", "sweep.storage=mysql://root:***@127.0.0.1/db"),
        ("postgresql://:onlypw@host/db", "postgresql://:***@host/db"),  # no user, a password
        ("postgresql://user:p%40ss%3Aword@host/db", "postgresql://user:***@host/db"),  # @ and : percent-encoded
        ("postgresql://user:p@ss@host/db", "postgresql://user:***@host/db"),  # a raw @ in the password
        ("https://h.example/x?token=abc123&page=2", "https://h.example/x?token=***&page=2"),
        ("+db.password=hunter2", "+db.password=***"),
        ("PGPASSWORD=hunter2 python sweep.py", "PGPASSWORD=*** python sweep.py"),
        ('notes="token=abc123"', 'notes="token=***"'),
        ('{"api_key": "k-123"}', '{"api_key": "***"}'),
        ("aws_secret_access_key: AKIA", "aws_secret_access_key: ***"),
    ],
)
def test_secrets_in_text_are_masked(given, shown):
    assert redact_text(given) == shown


@pytest.mark.parametrize(
    "plain",
    [
        "postgresql://user@host/db",  # a user, no password
        "sqlite:////tmp/study.db",
        "journal:///tmp/optuna.log",
        "http://host:8080/path",
        "optimizer.lr=0.01",
        "model=tokenizer_free",
        "num_tokens=5",
        "",
    ],
)
def test_text_without_secrets_is_unchanged(plain):
    assert redact_text(plain) == plain


def test_nested_data_is_masked_by_key_and_inside_strings():
    given = {
        "runs": [{"password": "x1", "url": "redis://u:x2@h/0", "n": 3}, ("PGPASSWORD=x3", 4.5)],
        "Api_Key": "x4",
        "credentials": None,
        "nested": {"db": {"token": ["x5"]}},
    }
    masked = redact_data(given)
    assert masked == {
        "runs": [{"password": MASK, "url": f"redis://u:{MASK}@h/0", "n": 3}, (f"PGPASSWORD={MASK}", 4.5)],
        "Api_Key": MASK,
        "credentials": None,
        "nested": {"db": {"token": MASK}},
    }
    assert given["runs"][0]["password"] == "x1"  # a copy: what is used stays as given


def test_secret_keys():
    assert all(is_secret_key(k) for k in ("password", "db.PASSWORD", "+logger.api_key", "PGPASSWORD", "hf_token"))
    assert not any(is_secret_key(k) for k in ("optimizer.lr", "tokens_seen", 3, None))


# --- end to end -------------------------------------------------------------------------
def files_holding(root: Path, secret: str) -> list[Path]:
    needle = secret.encode()
    return [path for path in root.rglob("*") if path.is_file() and needle in path.read_bytes()]


def test_a_study_on_postgres_writes_and_prints_no_password(tmp_path, postgres_url):
    password = postgres_url.split("://", 1)[1].split("@", 1)[0].split(":", 1)[1]
    assert len(password) >= 6  # a secret long enough not to occur by chance
    name = f"test-redact-{uuid.uuid4().hex[:12]}"
    source = write_sweep_file(tmp_path, n_trials=2, overrides=[*TRIAL_OVERRIDES, "trainer.max_epochs=1"])
    try:
        result = run_cli(
            "sweep.py",
            f"sweep={source}",
            f"sweep.storage={postgres_url}",
            f"sweep.study_name={name}",
            f"sweep.dir={tmp_path / 'study'}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        study = optuna.load_study(study_name=name, storage=postgres_url)  # the password was used
        assert len(study.trials) == 2
    finally:
        if name in optuna.get_all_study_names(postgres_url):
            optuna.delete_study(study_name=name, storage=postgres_url)
    trial_dirs = sorted((tmp_path / "study").glob("trial_*"))
    assert len(trial_dirs) == 2 and all((d / "run.json").is_file() for d in trial_dirs)
    assert password not in result.stdout and password not in result.stderr
    assert files_holding(tmp_path / "study", password) == []
    assert f"sweep.storage=postgresql+psycopg2://sweeplab:{MASK}@" in (trial_dirs[0] / "run.json").read_text()


def test_a_token_given_to_train_is_in_no_file_of_the_run(tmp_path):
    secret = "tok-" + uuid.uuid4().hex
    run_dir = tmp_path / "run"
    result = run_cli(
        "train.py",
        *FAKE_FAST,
        "trainer.max_epochs=1",
        "logger=tensorboard",
        f'notes="token={secret}"',
        f"+db.password={secret}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "results.json").is_file() and (run_dir / "run.json").is_file()
    assert secret not in result.stdout and secret not in result.stderr
    assert files_holding(run_dir, secret) == []
    assert f"+db.password={MASK}" in (run_dir / ".hydra" / "overrides.yaml").read_text()


def test_a_refused_command_does_not_print_the_password(tmp_path):
    secret = "pw-" + uuid.uuid4().hex
    result = run_cli(
        "sweep.py",
        "sweep=mnist_lenet",
        f"sweep.storage=nosuchdb+driver://user:{secret}@host/db",
        f"sweep.dir={tmp_path / 'study'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "sweep.storage" in lines[0]
    assert secret not in result.stdout + result.stderr and MASK in lines[0]


def test_secrets_of_the_command_line_are_masked_verbatim_wherever_they_show_up():
    from sweeplab.redact import remember_secrets

    tail = "tail" + uuid.uuid4().hex[:8]
    remember_secrets([f"sweep.storage=postgresql://u:head@{tail}@127.0.0.1/db", "optimizer.lr=0.1"])
    # a driver reading the raw @ as the host's start echoes the password's tail
    echoed = f'could not translate host name "{tail}@127.0.0.1"'
    assert redact_text(echoed) == 'could not translate host name "***@127.0.0.1"'
    assert redact_text("optimizer.lr=0.1") == "optimizer.lr=0.1"
