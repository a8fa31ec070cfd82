"""A stock QGIS without onnxruntime (the real desktop under Xvfb, QGIS' own Python, the ``make
package`` zip in a fresh profile): every entry point shows the missing-dependency message and no
Python error; the installer installs onnxruntime from the package index into the profile and, without
a restart, Live and Processing classify (driven by desktop_dependencies.py)."""
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.fixtures import REPO
from tests.qgis_plugin.test_desktop import QGIS, XVFB_RUN, fresh_profile

HERE = Path(__file__).resolve().parent
pytestmark = [pytest.mark.desktop, pytest.mark.skipif(QGIS is None or XVFB_RUN is None, reason="qgis or xvfb-run not found: make setup")]


def stock_environment(work: Path) -> dict:
    """The environment of a user's QGIS: nothing on PYTHONPATH (QGIS' own Python, /usr/bin/python3 on
    Debian, which has no onnxruntime), no QGIS_PLUGINPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "QGIS_PLUGINPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env.update(QT_QPA_PLATFORM="xcb", XDG_RUNTIME_DIR=str(work))
    return env


def run_desktop(package, work: Path, install: bool, timeout: int) -> tuple[dict, str]:
    profiles = fresh_profile(package, work / "qgis")
    raster = work / "sample.tif"  # QGIS writes .aux.xml beside what it opens: a copy
    shutil.copy(REPO / "landcover_plugin/sample/flair_sample.tif", raster)
    shots = work / "shots"
    shots.mkdir()
    env = stock_environment(work)
    env.update(LANDCOVER_REPORT=str(work / "report.json"), LANDCOVER_FAULTS=str(work / "faults.log"),
               LANDCOVER_SHOTS=str(shots), LANDCOVER_RASTER=str(raster), LANDCOVER_INSTALL="1" if install else "0",
               LANDCOVER_TESTS=str(HERE))
    proc = subprocess.run([XVFB_RUN, "-a", "-s", "-screen 0 1600x1000x24", QGIS, "--profiles-path", str(profiles),
                           "--nologo", "--noversioncheck", "--code", str(HERE / "desktop_dependencies.py")],
                          env=env, capture_output=True, text=True, timeout=timeout, cwd=work)
    faults = (work / "faults.log").read_text() if (work / "faults.log").exists() else ""
    output = f"exit {proc.returncode}\n{faults}\n{proc.stderr[-3000:]}"
    report = json.loads((work / "report.json").read_text()) if (work / "report.json").exists() else {}
    return report, output


def assert_missing_message_everywhere(report, output):
    assert report.get("alive"), (report.get("error"), output)
    assert "Fatal Python error" not in output, output
    assert report["plugin_loaded_at_startup"] and not report["onnxruntime_importable_at_start"]
    assert report["ready_at_start"] is False
    assert report["toolbar"]["visible"] and "Live land cover" in report["toolbar"]["actions"]
    for key in ("models", "classify"):
        assert report[key]["dialog"] and "onnxruntime" in report[key]["message"], report[key]
    assert report["dock"]["visible"] and report["dock"]["button"] and "onnxruntime" in report["dock"]["message"]
    assert "MISSING: onnxruntime" in report["diagnostics"]["text"] and "Install dependencies" in report["diagnostics"]["text"]
    assert "numpy: 1." in report["diagnostics"]["text"]  # QGIS' own, reported with its version
    assert report["can_execute"]["ok"] is False and "landcover:install-dependencies" in report["can_execute"]["message"]
    assert report["processing_run"].startswith("QgsProcessingException"), report["processing_run"]
    errors = report["processing_errors"]  # what the Processing log shows: the message, one line, no traceback
    assert errors and errors[0].startswith("Landcover needs onnxruntime") and "Install dependencies" in errors[0], errors
    assert not [e for e in errors if "Traceback" in e or "ModuleNotFoundError" in e], errors
    assert report["vectorize_can_execute"] is True
    assert report["link_opens_installer"]
    assert not [t for t in report["dialogs_seen"] if "error" in t.lower()], report["dialogs_seen"]
    assert report["messages"] == [], report["messages"]  # no Python error or warning logged


def test_every_entry_point_shows_the_message_without_python_errors(package, tmp_path):
    report, output = run_desktop(package, tmp_path, install=False, timeout=300)
    assert_missing_message_everywhere(report, output)
    assert not Path(report["private_dir"]).exists()  # nothing was installed by looking


def test_the_installer_is_busy_until_it_shows_pips_result(tmp_path):
    """pip's thread ends a moment before its queued result reaches the dialog (CI once saw the dialog
    counted done while it still said "Installing…"). Here pip fails at once on an index that refuses
    connections: right after the thread ends the dialog is still busy, then it shows the failure."""
    env = {k: v for k, v in stock_environment(tmp_path).items() if not k.startswith("PIP_")}  # no local wheels
    env.update(PIP_CONFIG_FILE=os.devnull, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(tmp_path), PYTHONPATH=str(REPO),
               PIP_INDEX_URL="http://127.0.0.1:9/simple/", PIP_RETRIES="1", PIP_TIMEOUT="5", PIP_NO_CACHE_DIR="1")
    proc = subprocess.run([sys._base_executable, str(HERE / "installer_result.py")], env=env, capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["after_click"]["running"] and report["after_click"]["status"].startswith("Installing")
    ended = report["thread_ended"]
    assert not ended["thread_running"] and ended["running"] and not ended["close_enabled"], ended
    shown = report["shown"]
    assert not shown["running"] and shown["close_enabled"] and "Not installed" in shown["status"], shown
    assert "could not reach the package index http://127.0.0.1:9/simple/" in shown["status"], shown["status"]
    assert not shown["private_dir_exists"], shown  # a failed install leaves nothing behind


def index_reachable() -> str | None:
    """None when the package index answers, else why not."""
    index = os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple/")
    try:
        with urllib.request.urlopen(index.rstrip("/") + "/onnxruntime/", timeout=15) as response:
            response.read(100)
        return None
    except OSError as exc:
        return f"the package index {index} is not reachable ({exc}): the installer cannot be tested here"


@pytest.mark.slow
def test_the_installer_installs_into_the_profile_and_live_and_processing_classify(package, tmp_path):
    reason = index_reachable()
    if reason:
        pytest.skip(reason)
    report, output = run_desktop(package, tmp_path, install=True, timeout=1500)
    assert_missing_message_everywhere(report, output)
    cancel = report["cancel"]
    assert "Cancelled" in cancel["status"] and not cancel["private_dir_exists"] and not cancel["ready"], cancel
    install = report["install"]
    assert install["ready"] and "no restart" in install["status"], install
    private = Path(report["private_dir"])
    assert private.is_relative_to(tmp_path / "qgis" / "profiles" / "default")  # inside the profile
    assert report["onnxruntime_after"]["file"].startswith(str(private))
    manifest = install["manifest"]
    assert "onnxruntime" in manifest["installed"] and "numpy" not in manifest["installed"]
    assert manifest["constraints"] == ["numpy==" + __import__("numpy").__version__]
    assert sorted(p.name for p in private.parent.iterdir()) == ["constraints.txt", private.name]  # no cache, no temp left
    assert report["dock_after_install"]["live_controls"]
    assert "CPUExecutionProvider" in report["live_status"]
    assert report["classified"]["valid"] and report["classified"]["renderer"] == "paletted"
    assert report["classified"]["classes"] == 13
    widget = report["model_widget"]  # names to pick; the value stays a name
    assert widget["items"][:2] == ["", "flair-rgb"] and {"dubai-rgb", "dubai-grey"} <= set(widget["items"]), widget
    assert widget["picked"] == "dubai-grey" and widget["empty"] in ("", None)


@pytest.mark.slow
def test_walkthrough_from_install_from_zip_to_a_styled_layer(package, tmp_path):
    """A brand-new profile: Install from ZIP, the toolbar's Live land cover, Install dependencies…, Live
    on a raster, Classify land cover… → Run → the styled class layer (desktop_walkthrough.py)."""
    reason = index_reachable()
    if reason:
        pytest.skip(reason)
    raster = tmp_path / "flair_sample.tif"
    shutil.copy(REPO / "landcover_plugin/sample/flair_sample.tif", raster)
    shots = tmp_path / "shots"
    shots.mkdir()
    env = stock_environment(tmp_path)
    env.update(LANDCOVER_REPORT=str(tmp_path / "report.json"), LANDCOVER_SHOTS=str(shots), LANDCOVER_ZIP=str(package),
               LANDCOVER_RASTER=str(raster), LANDCOVER_TESTS=str(HERE))
    proc = subprocess.run([XVFB_RUN, "-a", "-s", "-screen 0 1600x1000x24", QGIS, "--profiles-path", str(tmp_path / "qgis"),
                           "--nologo", "--noversioncheck", "--code", str(HERE / "desktop_walkthrough.py")],
                          env=env, capture_output=True, text=True, timeout=1800, cwd=tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report.get("alive"), (report.get("error"), proc.stderr[-3000:])
    assert "landcover_plugin" not in report["plugins_at_start"]
    steps = report["steps"]
    assert steps[0]["loaded"] and steps[0]["toolbar"] == ["Classify land cover…", "Live land cover", "Models…"]
    assert "onnxruntime" in steps[1]["message"]
    assert "no restart needed" in steps[2]["status"]
    assert "CPUExecutionProvider" in steps[3]["status"] and steps[3]["layer_valid"]
    assert steps[4]["renderer"] == "paletted" and steps[4]["classes"] == 13
    assert report["messages"] == []
