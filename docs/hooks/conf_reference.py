"""mkdocs hook: the config reference page lists conf/ as it is on disk.

``<!-- conf-files -->`` in a page becomes one section per config group (a folder of
``conf/``) with each option's YAML file shown whole, so the reference can never
drift from the configs: a new option, key or comment appears at the next build.
The files are read as text and shown; nothing in them is run.
"""

from __future__ import annotations

from pathlib import Path

MARKER = "<!-- conf-files -->"
CONF = Path(__file__).resolve().parents[2] / "conf"


def _yaml_block(path: Path) -> str:
    return f"```yaml\n{path.read_text().rstrip()}\n```"


def conf_sections(conf: Path = CONF) -> str:
    """Markdown: the root config, then each group with its options' files."""
    parts = [f"### `train.yaml` (the root)\n\n{_yaml_block(conf / 'train.yaml')}"]
    groups = sorted({p.parent for p in conf.rglob("*.yaml")} - {conf})
    for folder in groups:
        group = folder.relative_to(conf).as_posix()
        options = sorted(folder.glob("*.yaml"))
        names = ", ".join(f"`{p.stem}`" for p in options if not p.stem.startswith("_"))
        parts.append(f"### `{group}`\n\nOptions: {names}.")
        for path in options:
            parts.append(f"#### `{group}/{path.name}`\n\n{_yaml_block(path)}")
    return "\n\n".join(parts)


def on_page_markdown(markdown: str, **_: object) -> str:
    return markdown.replace(MARKER, conf_sections()) if MARKER in markdown else markdown
