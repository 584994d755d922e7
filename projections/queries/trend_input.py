"""Series from outside dtf for `dtf trends --input`: a CSV file with columns
`series,index,value` or a JSON object `{"<series>": [values, ...]}`.

In CSV, each series' points are ordered by their integer `index`; the change points are
reported by 0-based position in that order (the same numbers when the indices are 0..n-1).
Anything malformed is a ConfigError naming the file and the first problem.
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from dtf.errors import ConfigError

CSV_COLUMNS = ("series", "index", "value")


def load(path: Path) -> dict[str, list[float]]:
    """The series in `path`, read as JSON when it ends in .json or starts with `{`, else CSV."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        return from_json(text, str(path))
    return from_csv(text, str(path))


def from_json(text: str, source: str = "input") -> dict[str, list[float]]:
    """`{"<series>": [numbers]}` as a dict of float lists."""
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict) or not data:
        raise ConfigError(f'{source}: expected a non-empty JSON object {{"series": [values]}}')
    found: dict[str, list[float]] = {}
    for name, values in data.items():
        if not isinstance(values, list):
            raise ConfigError(f"{source}: series {name!r} must be a list of numbers")
        found[name] = [
            _number(v, f"{source}: series {name!r} item {i}") for i, v in enumerate(values)
        ]
    return found


def from_csv(text: str, source: str = "input") -> dict[str, list[float]]:
    """Rows `series,index,value` (with that header) as a dict of float lists."""
    reader = csv.DictReader(text.splitlines())
    header = [name.strip() for name in reader.fieldnames or []]
    if any(column not in header for column in CSV_COLUMNS):
        raise ConfigError(f"{source}: CSV needs a header with columns {','.join(CSV_COLUMNS)}")
    reader.fieldnames = header
    points: dict[str, dict[int, float]] = defaultdict(dict)
    for line, row in enumerate(reader, start=2):
        where = f"{source}: line {line}"
        name = (row["series"] or "").strip()
        if not name:
            raise ConfigError(f"{where}: empty series name")
        try:
            index = int((row["index"] or "").strip())
        except ValueError:
            raise ConfigError(f"{where}: index must be an integer, got {row['index']!r}") from None
        if index in points[name]:
            raise ConfigError(f"{where}: duplicate index {index} in series {name!r}")
        points[name][index] = _number((row["value"] or "").strip(), f"{where}: value")
    if not points:
        raise ConfigError(f"{source}: no data rows")
    return {name: [p[i] for i in sorted(p)] for name, p in points.items()}


def _number(value: object, where: str) -> float:
    """A finite float from a JSON number or CSV field; ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ConfigError(f"{where} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{where} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{where} must be finite, got {value!r}")
    return number
