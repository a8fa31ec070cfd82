"""Running a catalogue case and checking what it left: the folder before and after, the input bytes."""
from __future__ import annotations

import hashlib
import os
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures import REPO
from tests.reliability.catalogue import Case

TIMEOUT = 600


def snapshot(folder: Path) -> dict[str, str]:
    """Every file and folder under ``folder`` (relative path → SHA-256, or "dir")."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        found[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def prepare(case: Case, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    case.make(folder)


def mount_tmpfs(case: Case, folder: Path):
    """Mount the case's tmpfs (root only); returns the mount point or skips the test."""
    if case.tmpfs is None:
        return None
    name, options = case.tmpfs
    point = folder / name
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("a full disk is simulated with a small tmpfs, which needs root (mount -t tmpfs)")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()}): the disk-full case needs it")
    return point


def unmount(point) -> None:
    if point is not None:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def run_cli(case: Case, folder: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **case.env}
    env.pop("LANDCOVER_DEBUG", None)

    def limits():
        if case.fsize is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, case.fsize))

    return subprocess.run([sys.executable, "-m", "landcover_plugin", *case.args], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=TIMEOUT, preexec_fn=limits)


def check_messages(case: Case, code: int, stdout: str, stderr: str, prefix: str = "landcover: error: ") -> None:
    report = f"exit {code}\n--- stdout\n{stdout[-3000:]}\n--- stderr\n{stderr[-3000:]}"
    assert "Traceback" not in stdout + stderr, report
    assert code == case.exit, report
    lines = [line for line in stderr.splitlines() if line.strip()]
    if case.exit != 0:
        assert len(lines) == 1, f"expected one line on stderr\n{report}"
        assert lines[0].startswith(prefix), report
        assert re.search(case.message, lines[0]), f"{case.message!r} not in the error line\n{report}"
    else:
        assert all(line.startswith("Warning: ") for line in lines), report
        if case.message:
            assert any(re.search(case.message, line) for line in lines), f"no warning matching {case.message!r}\n{report}"


def check_folder(case: Case, folder: Path, before: dict[str, str], outputs: tuple[str, ...] | None = None,
                 allowed: tuple[str, ...] = ()) -> None:
    after = {name: digest for name, digest in snapshot(folder).items() if name not in allowed or name in before}
    outputs = case.outputs if outputs is None else outputs
    changed = [name for name, digest in before.items()
               if name not in case.removed and after.get(name) != digest]
    assert not changed, f"inputs changed or deleted: {changed}"
    gone = [name for name in case.removed if name in after]
    assert not gone, f"stale temporaries left: {gone}"
    missing = [name for name in outputs if name not in after]
    assert not missing, f"expected outputs missing: {missing}; folder: {sorted(after)}"
    extra = sorted(set(after) - set(before) - set(outputs))
    assert not extra, f"left behind: {extra}"
    assert not [n for n in set(after) - set(before) if ".part" in n], "temporary files left"
