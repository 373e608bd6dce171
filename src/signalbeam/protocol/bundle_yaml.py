"""Bundle documents as people write them (YAML) and read them (YAML with sorted keys, diffs)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

import yaml

from signalbeam.domain.errors import Malformed


def load_yaml(text: str, *, source: str = "body") -> Any:
    """Decode YAML (or JSON, which YAML reads too) safely, naming the line of a syntax error."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(err.problem or err.context or "invalid YAML").split())
        raise Malformed(f"{source}: YAML syntax error{where}: {problem}", field=source) from err
    except yaml.YAMLError as err:
        raise Malformed(f"{source}: not valid YAML: {err}", field=source) from err


def dump_yaml(document: Mapping[str, Any]) -> str:
    """A document as block-style YAML with sorted keys: stable, readable, and pushable again."""
    return yaml.safe_dump(
        dict(document), sort_keys=True, default_flow_style=False, allow_unicode=True, width=100
    )


def unified_diff(
    before: Mapping[str, Any], after: Mapping[str, Any], before_label: str, after_label: str
) -> str:
    """A unified diff of two documents rendered as YAML with sorted keys."""
    lines = difflib.unified_diff(
        dump_yaml(before).splitlines(keepends=True),
        dump_yaml(after).splitlines(keepends=True),
        fromfile=before_label,
        tofile=after_label,
    )
    return "".join(lines)


def changed_paths(before: Any, after: Any, path: str = "") -> list[str]:
    """Every path whose value differs, e.g. `containers[0].image`, in document order."""
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        changed: list[str] = []
        for key in sorted(set(before) | set(after)):
            child = f"{path}.{key}" if path else str(key)
            if key not in before or key not in after:
                changed.append(child)
            else:
                changed += changed_paths(before[key], after[key], child)
        return changed
    if isinstance(before, list) and isinstance(after, list):
        changed = []
        for index in range(max(len(before), len(after))):
            child = f"{path}[{index}]"
            if index >= len(before) or index >= len(after):
                changed.append(child)
            else:
                changed += changed_paths(before[index], after[index], child)
        return changed
    return [] if before == after else [path or "bundle"]
