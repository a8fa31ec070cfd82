"""Runs stopped from outside: ``kill -9`` and SIGTERM in the middle of a real ``landcover classify``.

SIGTERM (what ``timeout``, schedulers and systemd send) stops a run like Ctrl-C: exit status 130, one
line, nothing written. ``kill -9`` cannot be caught: its temporaries stay until the next run writing
into that folder removes them (and only ours, of processes that are gone). A Dask run killed either
way resumes from its finished parts, pixel-exact."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from osgeo import gdal

from landcover_plugin.outputs import _PART
from tests.fixtures import REPO, dominant_image, expected_classes, make_model, make_raster

CLI = [sys.executable, "-m", "landcover_plugin", "classify"]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def ours(folder: Path) -> list[str]:
    """Landcover's temporaries (``.NAME.partPID…``, ``outputs._PART``) anywhere under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if _PART.match(p.name))


def wait_for(predicate, proc: subprocess.Popen, seconds: float = 300) -> None:
    deadline = time.time() + seconds
    while not predicate():
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before it could be stopped"
        assert time.time() < deadline, "timed out waiting for the run"
        time.sleep(0.05)


def read(path: Path) -> np.ndarray:
    ds = gdal.Open(str(path))
    data = ds.ReadAsArray()
    ds = None
    return data


@pytest.fixture
def big(tmp_path):
    """A raster that takes several seconds with a 5×5-kernel model at 64 px tiles, and its expected classes
    (the model's class is the locally brightest band; compared away from class borders)."""
    data = dominant_image(1500, 2400)
    return make_raster(tmp_path / "in.tif", data), make_model(tmp_path / "m.onnx", kernel=5), data


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *args], cwd=cwd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def processes_of(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
            children.setdefault(int(text[text.rindex(")") + 2:].split()[1]), []).append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def gone(pids: list[int], seconds: float = 60) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if not [p for p in pids if Path(f"/proc/{p}").exists() and "Z" not in _state(p)]:
            return True
        time.sleep(0.2)
    return False


def _state(pid: int) -> str:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return text[text.rindex(")") + 2:].split()[0]
    except (OSError, ValueError):
        return "X"


def test_kill_9_leaves_a_temporary_that_the_next_run_removes(tmp_path, big):
    src, model, data = big
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = start(["in.tif", "out.tif", "--model", "m.onnx", "--confidence", "conf.tif", "-q", "--batch-size", "1"], tmp_path)
    wait_for(lambda: len(ours(tmp_path)) >= 2, proc)  # both rasters are being written
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = ours(tmp_path)
    assert left and not (tmp_path / "out.tif").exists(), left  # kill -9 cannot clean up
    mine = tmp_path / ".keep.tif.partial"  # not our naming: never touched
    mine.write_text("a user's file")
    # The next run in that folder (another output) removes the dead run's temporaries at start.
    small = make_raster(tmp_path / "small.tif", dominant_image(40, 40))
    again = subprocess.run([*CLI, small.name, "other.tif", "--model", "m.onnx", "-q"], cwd=tmp_path, env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and again.stderr == "", again.stderr
    assert ours(tmp_path) == []
    assert mine.read_text() == "a user's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*before, "small.tif", ".keep.tif.partial", "other.tif", "other.qml", "other.tif.aux.xml"])


def test_sigterm_stops_like_ctrl_c_and_writes_nothing(tmp_path, big):
    before = sorted(p.name for p in tmp_path.iterdir())
    proc = start(["in.tif", "out.tif", "--model", "m.onnx", "--confidence", "conf.tif", "--areas", "areas.csv", "-q",
                  "--batch-size", "1"], tmp_path)
    wait_for(lambda: len(ours(tmp_path)) >= 2, proc)
    time.sleep(0.3)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip() == "landcover: interrupted; nothing was written"
    assert "Traceback" not in out + err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no output, no temporary, inputs only


def test_sigterm_before_the_first_batch_and_during_start_up(tmp_path, big):
    """Whenever it arrives (during imports, the model load or the first reads), nothing is left — or, when
    the run had already committed its outputs, all of them."""
    before = sorted(p.name for p in tmp_path.iterdir())
    for delay in (0.05, 0.6, 1.5):
        proc = start(["in.tif", "out.tif", "--model", "m.onnx", "-q", "--tile-size", "64"], tmp_path)  # several seconds
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=120)
        # 130; the signal's own status before the handler exists or after it is gone; 0 if the run ended first
        assert proc.returncode in (130, -signal.SIGTERM, 0), err
        assert "Traceback" not in out + err
        now = sorted(p.name for p in tmp_path.iterdir())
        assert now != before or proc.returncode != 0
        if now != before:  # a fast machine finished first (the stop came after the commit or at exit): all of it
            assert now == sorted([*before, "out.tif", "out.qml", "out.tif.aux.xml"]), err
            # never "nothing was written": empty, or the message naming what was committed ("out.tif, out.qml …")
            assert err == "" or ("written completely before the stop" in err and "out.tif" in err), err
            ds = gdal.Open(str(tmp_path / "out.tif"))
            assert ds.GetRasterBand(1).Checksum() >= 0 and ds.RasterXSize == big[2].shape[-1]
            ds = None
            for name in ("out.tif", "out.qml", "out.tif.aux.xml"):
                (tmp_path / name).unlink()


def test_a_stop_during_the_commit_is_held_until_every_file_is_in_place(tmp_path, monkeypatch):
    """The renames are all or nothing: a SIGTERM arriving between them is delivered after the last."""
    from landcover_plugin import outputs

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    real_replace, calls = os.replace, []

    def replace_and_stop(src, dst):
        if not calls:
            os.kill(os.getpid(), signal.SIGTERM)  # arrives after the first rename
        calls.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace_and_stop)
    outputs.WRITTEN.clear()
    try:
        with pytest.raises(KeyboardInterrupt):
            with outputs.AtomicOutputs() as out:
                for name in ("a.tif", "a.qml", "a.csv"):
                    out.add(tmp_path / name).write_text(name)
                out.commit()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.qml", "a.tif"]  # every file, no temporary
    assert outputs.WRITTEN == [tmp_path / "a.tif", tmp_path / "a.qml", tmp_path / "a.csv"]


@pytest.mark.slow
@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM"])
def test_a_dask_run_stopped_mid_way_resumes_pixel_exact_and_leaves_nothing(tmp_path, big, how):
    """Stop the CLI process alone (its Dask workers must not outlive it) once two parts are finished;
    the rerun skips them, removes every temporary, and equals a single-process run pixel for pixel."""
    pytest.importorskip("distributed")
    src, model, data = big
    args = ["in.tif", "out.tif", "--model", "m.onnx", "--scheduler", "local[1]", "--part-rows", "150", "-q"]
    proc = start(args, tmp_path)
    parts = tmp_path / "out.tif.parts"
    wait_for(lambda: len(list(parts.glob("part_*.tif"))) >= 2, proc, seconds=600)
    workers = processes_of(proc.pid)
    os.kill(proc.pid, getattr(signal, how))
    out, err = proc.communicate(timeout=180)
    if how == "SIGTERM":
        assert proc.returncode == 130 and err.strip() == "landcover: interrupted; nothing was written", err
    assert "Traceback" not in out + err
    assert gone(workers), "Dask workers outlived the stopped run"
    done = sorted(p.name for p in parts.glob("part_*.tif"))
    assert 2 <= len(done) < 10 and not (tmp_path / "out.tif").exists()
    rerun = subprocess.run([*CLI, *args[:-1]], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr
    assert f"Resuming: {len(done)} of 10 parts already finished" in rerun.stdout
    assert ours(tmp_path) == [] and not parts.exists()
    single = subprocess.run([*CLI, "in.tif", "single.tif", "--model", "m.onnx", "-q"], cwd=tmp_path, env=ENV,
                            capture_output=True, text=True, timeout=900)
    assert single.returncode == 0, single.stderr
    np.testing.assert_array_equal(read(tmp_path / "out.tif"), read(tmp_path / "single.tif"))
    # and the map is the model's: the locally brightest band, away from the 10 px blocks' borders
    got, want = read(tmp_path / "out.tif"), expected_classes(data)
    assert (got == want).mean() > 0.9
