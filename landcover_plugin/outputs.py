"""Outputs that appear complete or not at all, and output paths checked before any work.

Every file Landcover writes (class and confidence rasters, styles, CSVs, models, part files) is
written under a temporary name in its target's folder, ``.NAME.partPID`` (plus whatever suffix GDAL
adds, e.g. ``.aux.xml``), and renamed into place by ``AtomicOutputs.commit()``: the main file first,
then its sidecars, so a sidecar never stands without its raster. ``abort()`` — on any error, Ctrl-C
or SIGTERM — deletes every temporary. The renames themselves are not interrupted: stop signals
(Ctrl-C, SIGTERM, SIGHUP) are held while they run and delivered after, and ``WRITTEN`` lists what was
committed, so a stop that arrives after the commit is never reported as "nothing was written". A
process killed outright (``kill -9``) cannot clean up: the next run writing into the same folder
removes temporaries of this naming whose process is gone.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

from .errors import LandcoverError

WRITTEN: list[Path] = []  # every target committed in this process, in order
_STOPS = {getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)}


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Hold Ctrl-C, SIGTERM and SIGHUP inside the block: their handlers are replaced by one that notes
    the signal, and the first noted is raised again, to the restored handler, when the block ends.
    (Main thread only — Python runs signal handlers there; elsewhere a no-op.)"""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: held.append(signum)) for s in _STOPS}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        if held:
            signal.raise_signal(held[0])


_PART = re.compile(r"^\.(?P<name>.+)\.part(?P<pid>\d+)(?:\..*)?$")


def temp_name(target: Path) -> Path:
    """``target``'s temporary name: ``.NAME.partPID`` in the same folder (renaming is then atomic)."""
    return target.with_name(f".{target.name}.part{os.getpid()}")


def _started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), from Linux's /proc; ``None`` elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2:].split()[19])  # field 22, after the command name
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                    if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _alive(pid: int, written: float | None = None) -> bool:
    """Whether the process that wrote a temporary last modified at ``written`` may still be running: its
    PID exists and (where the start time is known) it started before the file was last written."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        pass
    except OverflowError:  # no such PID can exist
        return False
    if written is None:
        return True
    started = _started(pid)
    # A process that started after the file was last written merely reuses the PID (a minute's tolerance: clock steps).
    return started is None or started <= written + 60.0


def remove_stale(folder: Path) -> list[Path]:
    """Delete ``.NAME.partPID*`` files and folders in ``folder`` whose process ``PID`` is gone (left by a
    killed run); returns what was removed. Files of any other naming are never touched."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = _PART.match(entry.name)
        try:
            written = entry.lstat().st_mtime
        except OSError:
            continue
        if match and not _alive(int(match.group("pid")), written):
            try:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
                removed.append(entry)
            except OSError:
                pass
    return removed


def sidecars(path: str | Path, style: bool = True) -> list[Path]:
    """The files written beside an output: GDAL's ``.aux.xml`` and, with ``style``, the ``.qml`` style."""
    path = Path(path)
    return [Path(f"{path}.aux.xml"), *([path.with_suffix(".qml")] if style else [])]


def check_output_path(path: str | Path, what: str = "output", suffixes: tuple[str, ...] | None = None,
                      inputs: tuple[str | Path, ...] = (), beside: list[Path] | tuple[Path, ...] = ()) -> Path:
    """Validate an output path, and the paths of the files written ``beside`` it (``sidecars``), before
    any work; returns it as a ``Path``.

    Raises ``LandcoverError`` when one of them is an existing folder or one of ``inputs``, the folder is
    missing or not writable, or the extension is not one of ``suffixes``."""
    output = Path(path)
    if output.is_dir():
        raise LandcoverError(f"{what} {output} is an existing folder: give a file name inside it")
    for other in beside:
        if Path(other).is_dir():
            raise LandcoverError(f"{other}, written beside the {what} {output}, is an existing folder: move it away "
                                 f"or choose another {what} path")
    for source in inputs:
        source = Path(source)
        for target in (output, *beside):
            target = Path(target)
            if target.resolve() == source.resolve() or (target.exists() and source.exists() and os.path.samefile(target, source)):
                raise LandcoverError(f"{what} {target} is an input: choose another {what} path (inputs are never overwritten)")
    folder = output.resolve().parent
    if not folder.is_dir():
        raise LandcoverError(f"{what} folder {folder} does not exist: create it or choose another {what} path")
    if not os.access(folder, os.W_OK):
        raise LandcoverError(f"{what} folder {folder} is not writable: choose another {what} path")
    if suffixes and output.suffix.lower() not in suffixes:
        raise LandcoverError(f"{what} {output} must end in {' or '.join(suffixes)}: change the file extension")
    return output


def os_error_text(exc: OSError) -> str:
    """A file error in one line: what failed, on which file, and what to do."""
    name = f" {exc.filename}" if exc.filename else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return (f"writing{name} failed ({reason}): the disk may be full — free some space or write elsewhere; "
                "nothing was left behind")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{name} ({reason}): choose a folder you can write to"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return f"file or folder not found:{name or ' ' + reason} ({reason}): check the path"
    return f"file error{name}: {reason}"


def size_text(n: float) -> str:
    """Bytes for people: ``"250 GB"``, ``"1.4 MB"``, ``"16 kB"``."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} bytes"


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
            raise LandcoverError(f"{folder} has {size_text(free)} free but {', '.join(n.name for n in names)} "
                                 f"need about {size_text(size)}: free some space or write elsewhere")


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
        ``.aux.xml`` beside a temporary raster goes along with it. Every target is checked first, so a
        folder in the way stops the commit before anything is renamed."""
        for tmp, target in self.files:
            for path, beside in ((target, tmp), (Path(f"{target}.aux.xml"), Path(f"{tmp}.aux.xml"))):
                if path.is_dir() and not tmp.is_dir() and (path == target or beside.exists()):
                    raise LandcoverError(f"{path} is an existing folder: move it away; nothing was written")
        with stop_signals_held():  # all of them renamed, or (an error) none past the failing one
            for tmp, target in self.files:
                if tmp.is_dir():
                    if target.exists():
                        shutil.rmtree(target)
                    os.replace(tmp, target)
                else:
                    os.replace(tmp, target)
                    aux = Path(f"{tmp}.aux.xml")
                    if aux.exists():
                        os.replace(aux, f"{target}.aux.xml")
                WRITTEN.append(target)
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
        if isinstance(exc, OSError):  # a full disk, a size limit… while writing: one line, nothing left
            raise LandcoverError(os_error_text(exc)) from None
