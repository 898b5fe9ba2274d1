"""``compare.py --diff A B``: two runs, or two groups of runs, side by side: what differs, and whether it matters.

A side is a run folder (or every run below a folder), or, with PATHs given, the runs a
``--where`` query keeps among them (``--diff "model=lenet" "model=mlp"``). The diff reads
what every run records and shows, section by section:

- config: the keys of the resolved ``.hydra/config.yaml`` (and the config group choices)
  whose values differ between the sides, keys one side lacks marked ``(absent)``; a key
  that takes the same values on both sides (the seeds 1, 2, 3 of two seed groups) is not shown;
- code: the commits, whether each tree was dirty, and the unified diff of the two ``code.patch`` files;
- data: the fingerprints (the record keeps one sha256 over all files read, so it cannot tell
  which file differs), the file counts and sizes, the train/val/test sizes;
- packages and machine: the versions that differ (``run.json`` and ``environment.txt``), CPU and GPUs;
- metrics: the headline numbers side by side with ``A - B``; for groups, the test ``--group-seeds``
  gives (:func:`sweeplab.reports.seed_groups.compare_two`: Welch's test, its interval, a verdict).

A missing or damaged record file is named in :attr:`RunDiff.problems` (one line each); the rest is shown.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import yaml

from sweeplab.errors import ConfigError
from sweeplab.metrics import HEADLINE
from sweeplab.metrics import metric as metric_named
from sweeplab.reports.query import select
from sweeplab.reports.run_records import NO_RESULTS, UNREADABLE, YAML_LOADER, RunRecord, load_runs
from sweeplab.reports.seed_groups import Group, compare_two, describe_group, difference_test
from sweeplab.runs.folder import PATCH_FILE, RunFolder
from sweeplab.runs.results import COMPLETED
from sweeplab.safe_read import UnreadableFile, read_json_file
from sweeplab.stats import MeanStd

ABSENT = "(absent)"  # a key the run's record does not have
UNREAD = "(unreadable)"  # the run's record file is missing or damaged: left out of what differs
PATCH_LINES_SHOWN = 80  # of the diff of two code.patch files; the rest is counted
FILES_SHOWN = 6  # of the files a side's patches change
SIZES = ("train_size", "val_size", "test_size")
HOST_KEYS = ("cpu", "cpu_count", "gpus", "platform", "hostname")
DIFF_FORMATS = ("text", "md", "json")


# --- what a run recorded ------------------------------------------------------------------


@dataclass
class RunFiles:
    """One run's record files, read once; ``problems`` names each file that is missing or damaged."""

    record: RunRecord
    config: dict[str, Any] = field(default_factory=dict)  # flat: "optimizer.lr" -> 0.001, and "model" -> "lenet"
    provenance: dict[str, Any] = field(default_factory=dict)  # run.json
    packages: dict[str, str] = field(default_factory=dict)  # environment.txt: name -> version
    patch: str | None = None  # code.patch, None when the tree was clean (or the file is missing)
    problems: list[str] = field(default_factory=list)

    @property
    def path(self) -> Path:
        return self.record.path

    @property
    def code(self) -> dict[str, Any]:
        code = self.provenance.get("code")
        return code if isinstance(code, dict) else {}

    @property
    def dirty(self) -> bool | None:
        """Whether the tree had uncommitted changes; None when no record says."""
        if "dirty" in self.code:
            return bool(self.code["dirty"])
        commit = self.record.results.get("git_commit")
        return str(commit).endswith("-dirty") if commit else None

    @property
    def commit(self) -> str | None:
        commit = self.code.get("commit") or self.record.results.get("git_commit")
        return str(commit).removesuffix("-dirty") if commit else None


def read_run_files(record: RunRecord) -> RunFiles:
    """Everything the diff compares of one run; a file that cannot be read becomes a problem line."""
    files = RunFiles(record)
    folder = RunFolder(record.path)
    files.config = _flat_config(folder, files.problems)
    choices = {key: value for key, value in record.hparams.items() if "." not in key and key not in files.config}
    files.config.update(choices)  # the config groups' options: model=lenet
    files.provenance = _read_provenance(folder, files.problems)
    files.packages = _read_packages(folder, files.problems)
    files.patch = _read_patch(folder, files.dirty, files.problems)
    if record.status == NO_RESULTS:
        files.problems.append(f"{folder.results}: missing (the run wrote no results)")
    elif record.status == UNREADABLE:
        files.problems.append(f"{folder.results}: damaged, its numbers are left out")
    return files


def flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.1}}`` -> ``{"optimizer.lr": 0.1}``; lists stay whole values."""
    if not isinstance(node, dict):
        return {prefix: node} if prefix else {}
    flat: dict[str, Any] = {}
    for key, value in node.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(flatten(value, name) if isinstance(value, dict) and value else {name: value})
    return flat


def _flat_config(folder: RunFolder, problems: list[str]) -> dict[str, Any]:
    if not folder.config.is_file():
        problems.append(f"{folder.config}: missing, the config is not compared")
        return {}
    try:
        with open(folder.config) as handle:
            config = yaml.load(handle, Loader=YAML_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        problems.append(f"{folder.config}: damaged ({_one_line(error)}), the config is not compared")
        return {}
    if not isinstance(config, dict):
        problems.append(f"{folder.config}: not a config (not a mapping), the config is not compared")
        return {}
    return flatten(config)


def _read_provenance(folder: RunFolder, problems: list[str]) -> dict[str, Any]:
    if not folder.record.is_file():
        problems.append(f"{folder.record}: missing, code, data and machine are not compared")
        return {}
    try:
        provenance = read_json_file(folder.record)
    except UnreadableFile as error:
        problems.append(f"{folder.record}: damaged ({error}), code, data and machine are not compared")
        return {}
    if not isinstance(provenance, dict):
        problems.append(f"{folder.record}: not a run's record (not a mapping)")
        return {}
    return provenance


def _read_packages(folder: RunFolder, problems: list[str]) -> dict[str, str]:
    try:
        text = folder.environment.read_text(encoding="utf-8")
    except FileNotFoundError:
        problems.append(f"{folder.environment}: missing, the installed packages are not compared")
        return {}
    except (OSError, UnicodeDecodeError) as error:
        problems.append(f"{folder.environment}: damaged ({_one_line(error)}), the packages are not compared")
        return {}
    packages = {}
    for line in text.splitlines():
        name, sep, version = line.partition("==")
        if sep:
            packages[name.strip().lower()] = version.strip()
    return packages


def _read_patch(folder: RunFolder, dirty: bool | None, problems: list[str]) -> str | None:
    try:
        return folder.patch.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        if dirty:
            problems.append(f"{folder.patch}: missing, though the run's record says its tree was dirty")
        return None
    except OSError as error:
        problems.append(f"{folder.patch}: unreadable ({_one_line(error)})")
        return None


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())[:200] or type(error).__name__


# --- the two sides ------------------------------------------------------------------------


@dataclass
class Side:
    """What one side of the diff is: its name (a folder, a query) and its runs."""

    name: str
    runs: list[RunFiles]

    @property
    def single(self) -> bool:
        return len(self.runs) == 1

    def values(self, get: Callable[[RunFiles], Any]) -> list[Any]:
        """Each run's value, each distinct value once, in run order."""
        seen: dict[str, Any] = {}
        for run in self.runs:
            value = get(run)
            seen.setdefault(json.dumps(value, sort_keys=True, default=repr), value)
        return list(seen.values())

    def shown(self, get: Callable[[RunFiles], Any]) -> Any:
        """The value of the side: the one value its runs share, else all of them (``1 | 2 | 3``)."""
        values = self.values(get)
        return values[0] if len(values) == 1 else " | ".join(_text(v) for v in values)


def side_of_folder(path: str) -> Side:
    """The runs in or below ``path``: one run folder, or a group (a multirun, a sweep)."""
    return Side(path, [read_run_files(record) for record in load_runs([path])])


def side_of_query(records: Sequence[RunRecord], query: str, paths: Sequence[str]) -> Side:
    """The runs among ``records`` that ``query`` keeps (a ``--where`` query); none is refused."""
    try:
        chosen = select(records, query)
    except ConfigError as error:
        hint = "; to diff two folders give no PATH: compare.py --diff A B" if Path(query).exists() else ""
        raise ConfigError("--diff", query, error.allowed + hint) from None
    if not chosen:
        raise ConfigError("--diff", query, f"matches none of the {len(records)} runs in {', '.join(paths)}")
    return Side(query, [read_run_files(record) for record in chosen])


def sides(paths: Sequence[str], a: str, b: str) -> tuple[Side, Side]:
    """Without ``paths``, ``a`` and ``b`` are folders; with them, ``--where`` queries over their runs."""
    if not paths:
        return side_of_folder(a), side_of_folder(b)
    records = load_runs(paths)
    return side_of_query(records, a, paths), side_of_query(records, b, paths)


# --- the diff -----------------------------------------------------------------------------


@dataclass
class Section:
    """One part of the diff: a table (``columns``, ``rows``) and lines for people below it."""

    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    patch: list[str] = field(default_factory=list)  # the code section: the diff of the two code.patch files


@dataclass
class RunDiff:
    a: Side
    b: Side
    metric: str
    sections: list[Section]
    test: dict[str, Any] | None  # the seed-group test of ``metric`` (groups only)
    problems: list[str]


def diff_runs(a: Side, b: Side, metric: str = "test_acc") -> RunDiff:
    """The sections comparing ``a`` with ``b``; the seed-group test of ``metric`` when a side has several runs."""
    sections = [
        config_section(a, b),
        code_section(a, b),
        data_section(a, b),
        packages_section(a, b),
        machine_section(a, b),
    ]
    metrics, test = metrics_section(a, b, metric)
    problems = [
        f"{label}: {problem}" for label, side in (("A", a), ("B", b)) for run in side.runs for problem in run.problems
    ]
    return RunDiff(a, b, metric, [*sections, metrics], test, problems)


def config_section(a: Side, b: Side) -> Section:
    keys = sorted({key for side in (a, b) for run in side.runs for key in run.config})
    section = Section("config", ["key", "A", "B"])
    for key in keys:
        get = partial(_config_value, key)
        if _differs(a, b, get):
            section.rows.append([key, a.shown(get), b.shown(get)])
    section.lines.append(
        f"{len(section.rows)} of {len(keys)} config keys differ"
        if section.rows
        else f"the {len(keys)} config keys have the same values"
    )
    return section


def _config_value(key: str, run: RunFiles) -> Any:
    return run.config.get(key, ABSENT) if run.config else UNREAD


def _differs(a: Side, b: Side, get: Callable[[RunFiles], Any]) -> bool:
    """Whether the sides' sets of values differ (runs whose file could not be read left out)."""

    def distinct(side: Side) -> set[str]:
        return {json.dumps(v, sort_keys=True, default=repr) for v in side.values(get) if v != UNREAD}

    found_a, found_b = distinct(a), distinct(b)
    return bool(found_a and found_b) and found_a != found_b


def code_section(a: Side, b: Side) -> Section:
    section = Section("code", ["", "A", "B"])
    section.rows.append(["commit", a.shown(lambda r: r.commit), b.shown(lambda r: r.commit)])
    section.rows.append(["dirty", _dirty_text(a), _dirty_text(b)])
    section.rows.append(["changed files", _changed_files(a), _changed_files(b)])
    section.lines.append(_who_was_dirty(a, b))
    patches_a, patches_b = a.values(lambda r: r.patch or ""), b.values(lambda r: r.patch or "")
    if len(patches_a) > 1 or len(patches_b) > 1:
        section.lines.append("the runs of a side ran with different code.patch files: diff two runs to see them")
    elif patches_a != patches_b:
        section.patch = patch_diff(patches_a[0], patches_b[0])
    return section


def _dirty_text(side: Side) -> str:
    flags = [run.dirty for run in side.runs]
    if all(flag is None for flag in flags):
        return "unknown"
    if side.single:
        return "yes" if flags[0] else "no"
    return f"{sum(bool(flag) for flag in flags)} of {len(flags)} runs"


def _who_was_dirty(a: Side, b: Side) -> str:
    dirty = [label for label, side in (("A", a), ("B", b)) if any(run.dirty for run in side.runs)]
    if not dirty:
        return "both trees were clean: each run is its commit"
    which = " and ".join(dirty)
    return (
        f"{which} ran with uncommitted changes ({PATCH_FILE}: `git apply` it on the commit for the code that ran)"
        + ("" if len(dirty) == 2 else f"; {'B' if dirty == ['A'] else 'A'} ran on a clean tree")
    )


def patched_files(patch: str | None) -> list[str]:
    """The files a patch changes (``diff --git a/X b/X``)."""
    return [line.split(" b/", 1)[-1] for line in (patch or "").splitlines() if line.startswith("diff --git ")]


def _changed_files(side: Side) -> str:
    """The files the side's patches change (all its runs'), the first :data:`FILES_SHOWN` named; ``-`` for none."""
    names = list(dict.fromkeys(name for run in side.runs for name in patched_files(run.patch)))
    more = f" (+{len(names) - FILES_SHOWN} more)" if len(names) > FILES_SHOWN else ""
    return ", ".join(names[:FILES_SHOWN]) + more if names else "-"


def patch_diff(patch_a: str, patch_b: str, limit: int = PATCH_LINES_SHOWN) -> list[str]:
    """The unified diff from A's code.patch to B's, cut to ``limit`` lines with a count of the rest."""
    lines = list(
        difflib.unified_diff(
            patch_a.splitlines(), patch_b.splitlines(), f"A/{PATCH_FILE}", f"B/{PATCH_FILE}", lineterm="", n=2
        )
    )
    if len(lines) > limit:
        lines = lines[:limit] + [f"... {len(lines) - limit} more lines of the diff of the two {PATCH_FILE} files"]
    return lines


def _data_value(key: str, run: RunFiles) -> Any:
    data = run.provenance.get("data")
    return data.get(key) if isinstance(data, dict) else None


def _result_value(key: str, run: RunFiles) -> Any:
    return run.record.results.get(key)


def data_section(a: Side, b: Side) -> Section:
    section = Section("data", ["", "A", "B"])
    getters = [(key, partial(_data_value, key)) for key in ("dataset", "sha256", "files", "bytes", "root")]
    getters += [(key, partial(_result_value, key)) for key in SIZES]
    section.rows += [[key, a.shown(get), b.shown(get)] for key, get in getters]
    prints_a = {v for v in a.values(partial(_data_value, "sha256")) if v}
    prints_b = {v for v in b.values(partial(_data_value, "sha256")) if v}
    if not prints_a or not prints_b:
        section.lines.append("a side has no data fingerprint: the data cannot be compared")
    elif prints_a == prints_b and len(prints_a) == 1:
        section.lines.append("the data fingerprints match: both sides read the same files")
    else:
        section.lines.append(
            "the data fingerprints differ: the record keeps one sha256 over all the files read, "
            "so it cannot tell which files differ (compare the files, root and bytes rows)"
        )
    return section


def _version_value(key: str, run: RunFiles) -> Any:
    found = run.provenance.get("versions")
    return found.get(key, ABSENT) if isinstance(found, dict) else UNREAD


def _package_value(name: str, run: RunFiles) -> Any:
    return run.packages.get(name, ABSENT) if run.packages else UNREAD


def packages_section(a: Side, b: Side) -> Section:
    section = Section("packages", ["package", "A", "B"])
    versions = sorted({key for side in (a, b) for run in side.runs for key in (run.provenance.get("versions") or {})})
    shown = set(versions)
    names = sorted({name for side in (a, b) for run in side.runs for name in run.packages} - shown)
    getters = [(key, partial(_version_value, key)) for key in versions]
    getters += [(name, partial(_package_value, name)) for name in names]
    section.rows += [[key, a.shown(get), b.shown(get)] for key, get in getters if _differs(a, b, get)]
    section.lines.append(
        f"{len(section.rows)} versions differ"
        if section.rows
        else f"the same versions of the {len(names)} installed packages"
    )
    return section


def _host_value(key: str, run: RunFiles) -> Any:
    host = run.provenance.get("host")
    value = host.get(key) if isinstance(host, dict) else None
    return (", ".join(map(str, value)) or "none") if isinstance(value, list) else value


def machine_section(a: Side, b: Side) -> Section:
    section = Section("machine", ["", "A", "B"])
    section.rows += [
        [key, a.shown(get), b.shown(get)] for key, get in ((key, partial(_host_value, key)) for key in HOST_KEYS)
    ]
    return section


def _metric_value(side: Side, key: str) -> float | MeanStd | None:
    """The run's number; for a group, mean ± std over its completed runs (as ``--group-seeds``)."""
    if side.single:
        value = side.runs[0].record.results.get(key)
        return value if _is_number(value) else None
    return MeanStd.of(_completed_values(side, key))


def _completed_values(side: Side, key: str) -> list[float]:
    return [
        float(run.record.results[key])
        for run in side.runs
        if run.record.status == COMPLETED and _is_number(run.record.results.get(key))
    ]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metrics_section(a: Side, b: Side, metric: str) -> tuple[Section, dict[str, Any] | None]:
    section = Section("metrics", ["metric", "A", "B", "A - B"])
    for key in dict.fromkeys([metric, *HEADLINE]):
        value_a, value_b = _metric_value(a, key), _metric_value(b, key)
        if value_a is None and value_b is None:
            continue
        number_a, number_b = (v.mean if isinstance(v, MeanStd) else v for v in (value_a, value_b))
        difference = number_a - number_b if number_a is not None and number_b is not None else None
        section.rows.append([key, _number_text(value_a), _number_text(value_b), _number_text(difference, signed=True)])
    if a.single and b.single:
        section.lines.append(
            "one run on each side: no test of the difference; give each side several seeds "
            "(train.py -m seed=1,2,3 ...) and diff the groups"
        )
        return section, None
    group_a, group_b = (Group(side.name, tuple(_completed_values(side, metric))) for side in (a, b))
    section.lines += [describe_group(group, metric) for group in (group_a, group_b) if group.n]
    section.lines.append(compare_two(group_a, group_b, metric))
    test = difference_test(group_a, group_b, metric)
    if test is None:
        return section, None
    return section, {
        "metric": metric,
        "difference": test.difference,
        "low": test.low,
        "high": test.high,
        "clipped": test.interval.clipped,
        "dof": test.dof,
        "p_value": test.p_value,
        "confidence": test.confidence,
        "significant": test.significant,
        "better": None
        if not test.significant
        else ("A" if (test.difference > 0) == metric_named(metric).higher_is_better else "B"),
    }


def _number_text(value: float | MeanStd | None, signed: bool = False) -> str:
    """4 decimals; a whole number (epochs, sizes) as it is."""
    if value is None:
        return "-"
    if isinstance(value, MeanStd):
        return f"{value.mean:.4f}" + (f" ± {value.std:.4f}" if value.std is not None else "") + f" (n={value.count})"
    if isinstance(value, int):  # epochs, sizes
        return f"{value:+d}" if signed else str(value)
    return f"{value:+.4f}" if signed else f"{value:.4f}"


# --- rendering ----------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def _heading(side: Side, label: str) -> str:
    runs = "1 run" if side.single else f"{len(side.runs)} runs"
    paths = ", ".join(str(run.path) for run in side.runs[:3]) + (", ..." if len(side.runs) > 3 else "")
    return f"{label}: {side.name} ({runs}: {paths})"


def render_diff(diff: RunDiff, fmt: str = "text") -> str:
    """The diff as aligned text, Markdown or JSON."""
    renderers = {"text": _render_text, "md": _render_markdown, "json": _render_json}
    if fmt not in renderers:
        raise ConfigError("--format", fmt, f"with --diff one of {', '.join(DIFF_FORMATS)}")
    return renderers[fmt](diff)


def _render_text(diff: RunDiff) -> str:
    lines = [_heading(diff.a, "A"), _heading(diff.b, "B")]
    for section in diff.sections:
        lines += ["", section.title.upper()]
        if section.rows:
            cells = [[_text(c) for c in row] for row in [section.columns, *section.rows]]
            widths = [max(len(row[i]) for row in cells) for i in range(len(section.columns))]
            lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
        lines += [f"  {line}" for line in section.lines]
        lines += [f"    {line}" for line in section.patch]
    return "\n".join(lines) + "\n"


def _render_markdown(diff: RunDiff) -> str:
    from sweeplab.reports.table_render import markdown_table  # noqa: PLC0415 (table_render imports runs_table)

    lines = [f"- {_heading(diff.a, 'A')}", f"- {_heading(diff.b, 'B')}"]
    for section in diff.sections:
        lines += ["", f"## {section.title.capitalize()}", ""]
        if section.rows:
            lines += markdown_table(section.columns, [[_text(c) for c in row] for row in section.rows]).splitlines()
            lines.append("")
        lines += section.lines
        if section.patch:
            lines += ["", "```diff", *section.patch, "```"]
    return "\n".join(lines) + "\n"


def _render_json(diff: RunDiff) -> str:
    document = {
        "a": {"name": diff.a.name, "runs": [str(run.path) for run in diff.a.runs]},
        "b": {"name": diff.b.name, "runs": [str(run.path) for run in diff.b.runs]},
        **{
            section.title: {
                "rows": [dict(zip(section.columns, row, strict=True)) for row in section.rows],
                "notes": section.lines,
                **({"patch_diff": section.patch} if section.title == "code" else {}),
            }
            for section in diff.sections
        },
        "test": diff.test,
        "problems": diff.problems,
    }
    return json.dumps(document, indent=2, default=str) + "\n"
