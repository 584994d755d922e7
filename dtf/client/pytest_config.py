"""Finding a project's pytest configuration file and its `addopts`, as pytest finds them.

The search mirrors `_pytest.config.findpaths.determine_setup`: the common ancestor of the path
arguments and its parents are tried in turn for pytest's config files, in pytest's order of
precedence; a `pyproject.toml` without pytest settings still fixes the rootdir; `-c FILE`
and `--rootdir DIR` win.  That function is not called: its signature and result changed
between pytest 8 and 9, and dtf must read the configuration the same way under both.  A file
that cannot be read counts as no configuration; pytest itself reports it when it runs.
"""

from __future__ import annotations

import os
import shlex
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import iniconfig

# A config loader returns the file's pytest settings, or None when it holds none.
Loader = Callable[[Path], dict[str, object] | None]


@dataclass(frozen=True)
class PytestConfig:
    """Where pytest roots a run, the config file it reads (if any) and that file's addopts."""

    rootdir: Path
    inifile: Path | None = None
    addopts: list[str] = field(default_factory=list)


def locate(
    invocation_dir: Path,
    args: Sequence[str],
    *,
    inifile: str | None = None,
    rootdir_arg: str | None = None,
) -> PytestConfig:
    """The configuration `pytest ARGS` run in `invocation_dir` would use.

    `args` are the positional arguments (paths or node ids); `inifile` and `rootdir_arg` are
    the values of `-c/--config-file` and `--rootdir` when given.
    """
    dirs = _dirs_from_args(invocation_dir, args)
    rootdir: Path | None = None
    path: Path | None = None
    settings: dict[str, object] = {}
    if inifile:
        path = _absolute(invocation_dir, inifile)
        loader = _loader(path)
        if loader is not None and path.is_file():
            settings = _load(loader, path) or {}
        rootdir = path.parent if path.is_file() else _common_ancestor(invocation_dir, dirs)
    else:
        ancestor = _common_ancestor(invocation_dir, dirs)
        rootdir, path, settings = _search(invocation_dir, [ancestor])
        if rootdir is None and rootdir_arg is None:
            with_setup_py = [d for d in (ancestor, *ancestor.parents) if (d / "setup.py").is_file()]
            if with_setup_py:
                rootdir = with_setup_py[0]
            else:
                if dirs != [ancestor]:
                    rootdir, path, settings = _search(invocation_dir, dirs)
                if rootdir is None:
                    rootdir = _common_ancestor(invocation_dir, [invocation_dir, ancestor])
    if rootdir_arg:
        rootdir = _absolute(invocation_dir, os.path.expandvars(rootdir_arg))
    assert rootdir is not None
    return PytestConfig(rootdir, path, split_addopts(settings.get("addopts")))


def split_addopts(value: object) -> list[str]:
    """`addopts` as arguments: an ini string is split as a shell would, a TOML list is kept."""
    if isinstance(value, list):
        return [str(arg) for arg in value]
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError:  # unbalanced quotes: pytest refuses to start, nothing to read
            return []
    return []


def _search(
    invocation_dir: Path, args: Sequence[Path]
) -> tuple[Path | None, Path | None, dict[str, object]]:
    """pytest's `locate_config`: the first directory, going up, with a pytest config file."""
    pyproject: Path | None = None
    for arg in args or [invocation_dir]:
        for base in (arg, *arg.parents):
            for name, loader in _loaders_by_name().items():
                candidate = base / name
                if not candidate.is_file():
                    continue
                if name == "pyproject.toml" and pyproject is None:
                    pyproject = candidate
                settings = _load(loader, candidate)
                if settings is not None:
                    return base, candidate, settings
    if pyproject is not None:
        return pyproject.parent, pyproject, {}
    return None, None, {}


def _load(loader: Loader, path: Path) -> dict[str, object] | None:
    try:
        return loader(path)
    except (OSError, UnicodeDecodeError, ValueError, iniconfig.ParseError):
        # tomllib.TOMLDecodeError is a ValueError.
        return None


def _ini_section(section: str, *, always: bool = False) -> Loader:
    def load(path: Path) -> dict[str, object] | None:
        ini = iniconfig.IniConfig(str(path))
        if section in ini:
            return dict(ini[section].items())
        return {} if always else None

    return load


def _pyproject(path: Path) -> dict[str, object] | None:
    tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {}).get("pytest", {})
    if "ini_options" in tool:
        return dict(tool["ini_options"])
    # pytest 9 also reads native TOML settings straight from [tool.pytest].
    native = {key: value for key, value in tool.items() if key != "ini_options"}
    return native if native and _PYTEST_MAJOR >= 9 else None


def _pytest_toml(path: Path) -> dict[str, object] | None:
    return dict(tomllib.loads(path.read_text(encoding="utf-8")).get("pytest", {}))


def _custom_toml(path: Path) -> dict[str, object] | None:
    """A TOML file given with `-c`: [tool.pytest...] tables like pyproject.toml, else [pytest]."""
    found = _pyproject(path)
    return found if found is not None else _pytest_toml(path)


def _pytest_major() -> int:
    try:
        return int(metadata.version("pytest").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return 9


_PYTEST_MAJOR = _pytest_major()


def _loaders_by_name() -> dict[str, Loader]:
    """pytest's config file names in its order of precedence (pytest.toml came with 9)."""
    toml_files: dict[str, Loader] = (
        {"pytest.toml": _pytest_toml, ".pytest.toml": _pytest_toml} if _PYTEST_MAJOR >= 9 else {}
    )
    return {
        **toml_files,
        "pytest.ini": _ini_section("pytest", always=True),
        ".pytest.ini": _ini_section("pytest", always=True),
        "pyproject.toml": _pyproject,
        "tox.ini": _ini_section("pytest"),
        "setup.cfg": _ini_section("tool:pytest"),
    }


def _loader(path: Path) -> Loader | None:
    """The loader for a file given with `-c`: by its name, else by its suffix."""
    by_suffix: dict[str, Loader] = {
        ".ini": _ini_section("pytest"),
        ".cfg": _ini_section("tool:pytest"),
        ".toml": _custom_toml,
    }
    return _loaders_by_name().get(path.name) or by_suffix.get(path.suffix)


def _absolute(invocation_dir: Path, path: str) -> Path:
    return Path(os.path.normpath(invocation_dir / path))


def _dirs_from_args(invocation_dir: Path, args: Sequence[str]) -> list[Path]:
    """The existing directories the arguments name (a file counts as its directory)."""
    dirs = []
    for arg in args:
        if arg.startswith("-"):
            continue
        path = _absolute(invocation_dir, arg.split("::", 1)[0])
        if path.exists():
            dirs.append(path if path.is_dir() else path.parent)
    return dirs


def _common_ancestor(invocation_dir: Path, paths: Sequence[Path]) -> Path:
    existing = [path for path in paths if path.exists()]
    if not existing:
        return invocation_dir
    common = Path(os.path.commonpath([str(path) for path in existing]))
    return common.parent if common.is_file() else common
