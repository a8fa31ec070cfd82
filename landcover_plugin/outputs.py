"""Outputs that appear complete or not at all, and output paths checked before any work.

Every file Landcover writes (class and confidence rasters, styles, CSVs, models, part files) is
written under a temporary name in its target's folder, ``.NAME.partPID`` (plus whatever suffix GDAL
adds, e.g. ``.aux.xml``), and renamed into place by ``AtomicOutputs.commit()``: the main file first,
then its sidecars, so a sidecar never stands without its raster. ``abort()`` — on any error, Ctrl-C
or SIGTERM — deletes every temporary. A process killed outright (``kill -9``) cannot clean up: the
next run writing into the same folder removes temporaries of this naming whose process is gone.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from .errors import LandcoverError

_PART = re.compile(r"^\.(?P<name>.+)\.part(?P<pid>\d+)(?:\..*)?$")


def temp_name(target: Path) -> Path:
    """``target``'s temporary name: ``.NAME.partPID`` in the same folder (renaming is then atomic)."""
    return target.with_name(f".{target.name}.part{os.getpid()}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def remove_stale(folder: Path) -> list[Path]:
    """Delete ``.NAME.partPID*`` files and folders in ``folder`` whose process ``PID`` is gone (left by a
    killed run); returns what was removed. Files of any other naming are never touched."""
    removed = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _PART.match(entry.name)
        if match and not _alive(int(match.group("pid"))):
            try:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                removed.append(entry)
            except OSError:
                pass
    return removed


def check_output_path(path: str | Path, what: str = "output", suffixes: tuple[str, ...] | None = None,
                      inputs: tuple[str | Path, ...] = ()) -> Path:
    """Validate an output path before any work; returns it as a ``Path``.

    Raises ``LandcoverError`` when it is an existing folder, one of ``inputs``, its folder is missing or
    not writable, or its extension is not one of ``suffixes``."""
    output = Path(path)
    if output.is_dir():
        raise LandcoverError(f"{what} {output} is an existing folder: give a file name inside it")
    for source in inputs:
        source = Path(source)
        if output.resolve() == source.resolve() or (output.exists() and source.exists() and os.path.samefile(output, source)):
            raise LandcoverError(f"{what} {output} is an input: choose another {what} path (inputs are never overwritten)")
    folder = output.resolve().parent
    if not folder.is_dir():
        raise LandcoverError(f"{what} folder {folder} does not exist: create it or choose another {what} path")
    if not os.access(folder, os.W_OK):
        raise LandcoverError(f"{what} folder {folder} is not writable: choose another {what} path")
    if suffixes and output.suffix.lower() not in suffixes:
        raise LandcoverError(f"{what} {output} must end in {' or '.join(suffixes)}: change the file extension")
    return output


def check_free_space(paths_and_bytes: dict[Path, int]) -> None:
    """Raise ``LandcoverError`` when a folder has less free space than the bytes meant for it."""
    need: dict[Path, tuple[int, list[Path]]] = {}
    for path, size in paths_and_bytes.items():
        folder = Path(path).resolve().parent
        total, names = need.get(folder, (0, []))
        need[folder] = (total + size, [*names, Path(path)])
    for folder, (size, names) in need.items():
        free = shutil.disk_usage(folder).free
        if size > free:
            raise LandcoverError(f"{folder} has {free / 1e9:.2f} GB free but {', '.join(n.name for n in names)} "
                                 f"need about {size / 1e9:.2f} GB: free some space or write elsewhere")


class AtomicOutputs:
    """Temporary files renamed into place together. Use as a context manager::

        with AtomicOutputs() as out:
            tmp = out.add(target)        # write to tmp
            out.commit()                 # renames every tmp to its target (the first added first)

    Leaving the block without ``commit()`` (an error, ``Cancelled``, Ctrl-C, SIGTERM) deletes the
    temporaries. ``add`` also removes stale temporaries of killed runs in the target's folder."""

    def __init__(self) -> None:
        self.files: list[tuple[Path, Path]] = []  # (temporary, target)
        self.committed = False

    def add(self, target: str | Path) -> Path:
        target = Path(target)
        remove_stale(target.resolve().parent)
        tmp = temp_name(target)
        self.files.append((tmp, target))
        return tmp

    def commit(self) -> None:
        """Rename the temporaries to their targets, the first added (the main file) first; GDAL's
        ``.aux.xml`` beside a temporary raster goes along with it."""
        for tmp, target in self.files:
            if tmp.is_dir():
                if target.exists():
                    shutil.rmtree(target)
                os.replace(tmp, target)
                continue
            os.replace(tmp, target)
            aux = Path(f"{tmp}.aux.xml")
            if aux.exists():
                os.replace(aux, f"{target}.aux.xml")
        self.committed = True

    def abort(self) -> None:
        """Delete every temporary (and GDAL's sidecars of them)."""
        for tmp, _ in self.files:
            for path in (tmp, Path(f"{tmp}.aux.xml"), Path(f"{tmp}.msk")):
                try:
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink(missing_ok=True)
                except OSError:
                    pass

    def __enter__(self) -> AtomicOutputs:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if not self.committed:
            self.abort()
