"""Rendered config files on disk: in an app's directory, or under the state dir for containers.

Files are written with the mode the unit asks for (`spec_rules.file_mode`: 0600 for one
holding a secret unless the unit says otherwise); directories the agent creates for them
under the state dir are 0700. A file is normally replaced atomically (a reader never sees
half of it); a container that takes new files by a signal has them rewritten in place,
since its bind mount holds the file itself and would never see a replacement.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from signalbeam.agent.config_render import RenderedFile
from signalbeam.agent.units import UnitError


def target(directory: Path, file: RenderedFile) -> Path:
    """Where `file` goes under `directory`; refuses a path that leads out of it (a symlink)."""
    path = directory / file.path.lstrip("/")
    parent = path.parent.resolve()
    if not parent.is_relative_to(directory.resolve()):
        raise UnitError(f"config file {file.path} would be written outside {directory}")
    return path


def differs(directory: Path, files: Iterable[RenderedFile]) -> bool:
    """True when any of `files` is missing under `directory` or holds other bytes or mode."""
    for file in files:
        path = directory / file.path.lstrip("/")
        try:
            if path.read_bytes() != file.content or (path.stat().st_mode & 0o7777) != file.mode:
                return True
        except OSError:
            return True
    return False


def write(directory: Path, files: Iterable[RenderedFile], *, in_place: bool, private: bool) -> None:
    """Write `files` under `directory` (created 0700 when `private`); `UnitError` on failure."""
    try:
        directory.mkdir(mode=0o700 if private else 0o755, parents=True, exist_ok=True)
        for file in files:
            path = target(directory, file)
            path.parent.mkdir(mode=0o700 if private else 0o755, parents=True, exist_ok=True)
            (_rewrite if in_place else _replace)(path, file)
    except OSError as err:
        raise UnitError(f"cannot write config files in {directory}: {err.strerror or err}") from err


def _replace(path: Path, file: RenderedFile) -> None:
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(file.content)
            os.fchmod(out.fileno(), file.mode)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise


def _rewrite(path: Path, file: RenderedFile) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        # Mode first: the new bytes may be a secret the old mode would have shown.
        os.fchmod(out.fileno(), file.mode)
        out.truncate(0)
        out.write(file.content)


def prepare_root(root: Path) -> None:
    """The directory of containers' rendered files: owner-only, like the state dir."""
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(root, 0o700)


def gc(root: Path, keep: set[Path]) -> None:
    """Remove containers' rendered-file directories not in `keep` (a failure is harmless)."""
    if not root.is_dir():
        return
    for unit in root.iterdir():
        for version in unit.iterdir() if unit.is_dir() else []:
            if version not in keep:
                shutil.rmtree(version, ignore_errors=True)
        if unit.is_dir() and not any(unit.iterdir()):
            unit.rmdir()
