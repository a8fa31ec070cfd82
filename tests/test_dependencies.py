"""The dependency probe, QGIS' interpreter discovery and the installer (offline: tiny wheels made here,
served from a folder or from an HTTP server on 127.0.0.1)."""
import base64
import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy
import pytest

from landcover_plugin import dependencies as deps
from landcover_plugin.errors import Cancelled, LandcoverError
from tests.fixtures import REPO


def make_wheel(folder: Path, name: str, version: str, code: str = "", requires: tuple[str, ...] = (),
               module: str | None = None) -> Path:
    """A pure-Python wheel with one module (``module``, default: the name)."""
    module = module or name.replace("-", "_")
    dist = f"{name.replace('-', '_')}-{version}"
    files = {f"{module}/__init__.py": code or f"__version__ = '{version}'\n",
             f"{dist}.dist-info/METADATA": "Metadata-Version: 2.1\nName: " + name + "\nVersion: " + version + "\n"
             + "".join(f"Requires-Dist: {r}\n" for r in requires),
             f"{dist}.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
             f"{dist}.dist-info/top_level.txt": module + "\n"}
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}.dist-info/RECORD,,")
    files[f"{dist}.dist-info/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        for path, text in files.items():
            z.writestr(path, text)
    return wheel


@pytest.fixture
def offline_pip(monkeypatch):
    """pip sees no configuration of this machine (its index, find-links, constraints)."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for key in [k for k in os.environ if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"]:
        monkeypatch.delenv(key)


@pytest.fixture
def wheelhouse(tmp_path):
    """fakeort 1.5 (needs fakedep and numpy), fakedep 1.0, a fake numpy at this numpy's version, and
    fakeort-gpu 1.5 whose module fails to import (no CUDA)."""
    house = tmp_path / "wheels"
    make_wheel(house, "fakeort", "1.5.0", requires=("fakedep>=1", "numpy>=1.20"),
               code="import fakedep\n__version__ = '1.5.0'\ndef get_available_providers():\n    return ['CPUExecutionProvider']\n")
    make_wheel(house, "fakedep", "1.0.0")
    make_wheel(house, "numpy", numpy.__version__, code="raise ImportError('the fake numpy was imported')\n")
    make_wheel(house, "fakeort-gpu", "1.5.0", module="fakeort", requires=("numpy>=1.20",),
               code="raise ImportError('libcudart.so.12: cannot open shared object file')\n")
    return house


class Recorder:
    def __init__(self, cancel_after: str | None = None):
        self.lines, self.fractions, self.cancel_after = [], [], cancel_after

    def progress(self, fraction):
        self.fractions.append(fraction)

    def is_cancelled(self):
        return self.cancel_after is not None and any(self.cancel_after in line for line in self.lines)

    def info(self, message):
        self.lines.append(message)

    def warning(self, message):
        self.lines.append(f"Warning: {message}")


def this_interpreter() -> deps.Interpreter:
    return deps.Interpreter(sys.executable, ".".join(map(str, sys.version_info[:3])), [sys.executable, "-m", "pip"],
                            deps._pip_version([sys.executable, "-m", "pip"]), "its own pip")


# ------------------------------------------------------------------------------------------- versions

@pytest.mark.parametrize("version,spec,ok", [
    ("1.32.0", ">=1.17,<1.33", True), ("1.33.0", ">=1.17,<1.33", False), ("1.16.3", ">=1.17,<1.33", False),
    ("1.17", ">=1.17,<1.33", True), ("1.24.2", "==1.24.2", True), ("1.24.2+dfsg", "==1.24.*", True),
    ("1.26.0", "==1.24.*", False), ("2.0.1", "<2", False), ("1.26.4", "<2", True), ("3.11.2", ">=3.9", True),
    ("3.8.10", ">=3.9", False), ("1.4.2", "~=1.4", True), ("2.0", "~=1.4", False), ("1.0", "!=1.0", False),
])
def test_in_range(version, spec, ok):
    assert deps.in_range(version, spec) is ok


def test_constraints_pin_qgis_numpy():
    assert deps.constraints({"numpy": "1.24.2", "gdal": "3.6.2"}) == ["numpy==1.24.2"]
    assert deps.constraints({}) == ["numpy<2"]
    assert deps.constraints() == [f"numpy=={numpy.__version__}"]


def test_requirements_choose_the_gpu_build_only_with_an_nvidia_gpu(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    assert deps.requirements_for("required", []) == [f"onnxruntime{deps.ONNXRUNTIME_RANGE}"]
    assert deps.requirements_for("required", ["GPU 0: NVIDIA H200"]) == [f"onnxruntime-gpu{deps.ONNXRUNTIME_RANGE}"]
    assert deps.requirements_for("cpu") == [f"onnxruntime{deps.ONNXRUNTIME_RANGE}"]
    monkeypatch.setattr(sys, "platform", "darwin")  # no CUDA build for macOS
    assert deps.requirements_for("required", ["GPU 0: something"]) == [f"onnxruntime{deps.ONNXRUNTIME_RANGE}"]


def test_the_tested_range_holds_the_onnxruntime_of_make_setup():
    import onnxruntime

    assert deps.in_range(onnxruntime.__version__, deps.ONNXRUNTIME_RANGE), (
        f"onnxruntime {onnxruntime.__version__} is outside {deps.ONNXRUNTIME_RANGE}: test it, then move the range")


# ---------------------------------------------------------------------------------------------- probe

def run_probe(tmp_path, *python_args, private=None, setup=""):
    """The probe in a fresh interpreter (its own sys.path and modules)."""
    code = (f"import json, sys; sys.path.insert(0, {str(REPO)!r}); {setup}\n"
            "from landcover_plugin import dependencies as d\n"
            f"private = {str(private) if private else None!r}\n"
            "if private: d.activate(private)\n"
            "r = d.probe(private, deep=True)\n"
            "print(json.dumps({'report': r.to_dict(), 'ready': r.ready, 'summary': r.summary(), "
            "'missing': [f.dist for f in r.missing], 'lines': d.probe_lines(r)}))")
    proc = subprocess.run([sys.executable, *python_args, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_probe_with_nothing_installed_never_raises(tmp_path):
    """-S: no site-packages at all (no numpy, no GDAL bindings, no onnxruntime)."""
    result = run_probe(tmp_path, "-S")
    assert result["ready"] is False
    assert result["missing"] == ["onnxruntime", "numpy", "GDAL"]
    assert "onnxruntime: not installed" in result["summary"]
    assert any("rasterio: not installed" in line for line in result["lines"])


def test_probe_finds_the_private_folder_first(tmp_path):
    private = tmp_path / "profile" / "landcover" / "python" / deps.interpreter_tag()
    make_wheel(tmp_path / "w", "onnxruntime", "1.20.1")
    with zipfile.ZipFile(next((tmp_path / "w").glob("*.whl"))) as z:
        z.extractall(private)
    result = run_probe(tmp_path, private=private)
    ort = next(p for p in result["report"]["packages"] if p["dist"] == "onnxruntime")
    assert ort["version"] == "1.20.1" and ort["private"] is True and ort["problem"] is None
    assert result["ready"] is True
    assert any("onnxruntime: 1.20.1 (Landcover's folder)" in line for line in result["lines"])


def test_probe_reports_a_version_outside_the_range_and_a_broken_import(tmp_path):
    old = tmp_path / "old"
    make_wheel(tmp_path / "w1", "onnxruntime", "1.9.0")
    with zipfile.ZipFile(next((tmp_path / "w1").glob("*.whl"))) as z:
        z.extractall(old)
    result = run_probe(tmp_path, private=old)
    assert "outside the tested range" in result["summary"] and not result["ready"]
    broken = tmp_path / "broken"
    make_wheel(tmp_path / "w2", "onnxruntime", "1.20.0", code="raise OSError('DLL load failed while importing')\n")
    with zipfile.ZipFile(next((tmp_path / "w2").glob("*.whl"))) as z:
        z.extractall(broken)
    result = run_probe(tmp_path, private=broken)
    assert "installed but cannot be imported (OSError: DLL load failed" in result["summary"]


def test_diagnostics_work_without_onnxruntime(tmp_path):
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
            "from landcover_plugin.diagnostics import diagnostics_text; print(diagnostics_text())")
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "MISSING: onnxruntime, numpy, GDAL" in proc.stdout
    assert "Fix: " in proc.stdout and "flair-rgb (default):" in proc.stdout and "metadata not read" in proc.stdout


# ------------------------------------------------------------------------------------ the interpreter

def never(_):
    return None


@pytest.mark.parametrize("executable,exec_prefix,platform_name,version,first", [
    # Debian/Ubuntu apt QGIS: sys.executable is the interpreter
    ("/usr/bin/python3", "/usr", "linux", (3, 11), "/usr/bin/python3"),
    # a shim of another Python found on PATH: the interpreter of QGIS' prefix comes next
    ("/root/.pyenv/shims/python3", "/usr", "linux", (3, 11), "/root/.pyenv/shims/python3"),
    # OSGeo4W: QGIS is bin\qgis-bin.exe; Python is apps\Python39 (sys.exec_prefix)
    (r"C:\OSGeo4W\bin\qgis-bin.exe", r"C:\OSGeo4W\apps\Python39", "win32", (3, 9), r"C:\OSGeo4W\apps\Python39\python.exe"),
    # the standalone Windows installer
    (r"C:\Program Files\QGIS 3.22.16\bin\qgis-ltr-bin.exe", r"C:\Program Files\QGIS 3.22.16\apps\Python39", "win32",
     (3, 9), r"C:\Program Files\QGIS 3.22.16\apps\Python39\python.exe"),
    # macOS QGIS.app: the interpreter is Contents/MacOS/bin/python3.x beside the QGIS binary
    ("/Applications/QGIS.app/Contents/MacOS/QGIS", "/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.9",
     "darwin", (3, 9), "/Applications/QGIS.app/Contents/MacOS/bin/python3.9"),
    # conda-forge QGIS (Linux and Windows)
    ("/opt/conda/envs/qgis/bin/qgis", "/opt/conda/envs/qgis", "linux", (3, 12), "/opt/conda/envs/qgis/bin/python3.12"),
    (r"C:\conda\envs\qgis\Library\bin\qgis.exe", r"C:\conda\envs\qgis", "win32", (3, 12), r"C:\conda\envs\qgis\python.exe"),
    # pythonw is never used for pip
    (r"C:\Python39\pythonw.exe", r"C:\Python39", "win32", (3, 9), r"C:\Python39\python.exe"),
])
def test_python_candidates_per_platform(executable, exec_prefix, platform_name, version, first):
    candidates = deps.python_candidates(executable, exec_prefix, platform_name, version, which=never)
    assert candidates[0] == first
    assert len(candidates) == len(set(candidates))
    if platform_name == "win32":
        assert not [c for c in candidates if c.lower().endswith("qgis-bin.exe")]
    if executable.startswith("/root/.pyenv"):
        assert candidates[1] == "/usr/bin/python3.11"


def test_python_candidates_add_path_lookups_last():
    found = {"python3.11": "/usr/local/bin/python3.11"}
    candidates = deps.python_candidates("/usr/bin/qgis", "/usr", "linux", (3, 11), which=found.get)
    assert candidates[-1] == "/usr/local/bin/python3.11" and candidates[0] == "/usr/bin/python3.11"


def fake_python(path: Path, version: list, prefix: str = "/elsewhere") -> str:
    path.write_text("#!/bin/sh\necho '" + json.dumps({"version": version, "prefix": prefix, "bits": 64,
                                                      "machine": os.uname().machine, "platform": sys.platform}) + "'\n")
    path.chmod(0o755)
    return str(path)


def test_find_python_prefers_this_prefix_and_rejects_other_versions(tmp_path):
    wrong = fake_python(tmp_path / "python2.7", [2, 7, 18])
    interp = deps.find_python(candidates=[str(tmp_path / "missing"), wrong, str(tmp_path / "python2.7"), sys.executable])
    assert interp.path == sys.executable and interp.pip[:2] == [sys.executable, "-m"] and interp.pip_version
    assert interp.note == ""
    with pytest.raises(LandcoverError, match="Python interpreter was not found"):
        deps.find_python(candidates=[wrong])


def test_find_python_runs_pip_from_a_wheel_when_the_interpreter_has_none(tmp_path, monkeypatch):
    wheels = [w for w in deps.local_pip_wheels()]
    if not wheels:
        pytest.skip("no pip wheel on this machine (Debian: python3-pip-whl)")
    venv = tmp_path / "nopip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    assert deps._pip_version([python, "-m", "pip"]) is None
    interp = deps.find_python(candidates=[python])
    assert interp.pip == [python, str(Path(wheels[0]) / "pip")] and interp.pip_version
    assert "another prefix" in interp.note  # the version matches; the prefix is the venv's


def serve(folder: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def pip_index(tmp_path: Path, tamper: bool = False) -> Path:
    """A PEP 503 index with one pip wheel (a copy of a real one)."""
    wheels = deps.local_pip_wheels()
    if not wheels:
        pytest.skip("no pip wheel on this machine to serve (Debian: python3-pip-whl)")
    index = tmp_path / "index"
    (index / "pip").mkdir(parents=True)
    shutil.copy(wheels[0], index / "pip")
    name = Path(wheels[0]).name
    digest = hashlib.sha256(Path(wheels[0]).read_bytes()).hexdigest()
    if tamper:
        digest = "0" * 64
    (index / "pip" / "index.html").write_text(
        f'<html><body><a href="{name}#sha256={digest}" data-requires-python="&gt;=3.7">{name}</a>'
        '<a href="pip-1.0.tar.gz#sha256=00">pip-1.0.tar.gz</a></body></html>')
    return index


def test_a_pip_wheel_is_fetched_from_the_index_and_checked(tmp_path, monkeypatch):
    server, url = serve(pip_index(tmp_path))
    try:
        venv = tmp_path / "nopip"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        monkeypatch.setattr(deps, "local_pip_wheels", lambda: [])  # as on a stock Debian without python3-pip-whl
        log = []
        interp = deps.find_python(tmp_path / "root", f"{url}/", log.append, candidates=[str(venv / "bin" / "python")])
        assert interp.pip_source.startswith(str(tmp_path / "root" / ".bootstrap")) and interp.pip_version
        assert any("Downloading pip-" in line for line in log)
    finally:
        server.shutdown()


def test_a_pip_wheel_with_the_wrong_sha256_is_refused(tmp_path):
    server, url = serve(pip_index(tmp_path, tamper=True))
    try:
        with pytest.raises(LandcoverError, match="does not have the SHA-256"):
            deps.download_pip_wheel(tmp_path / "bootstrap", f"{url}/", lambda _: None)
        assert not list((tmp_path / "bootstrap").glob("*.whl"))
    finally:
        server.shutdown()


def test_no_index_and_no_pip_says_what_to_do(tmp_path, monkeypatch):
    venv = tmp_path / "nopip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    monkeypatch.setattr(deps, "local_pip_wheels", lambda: [])
    with pytest.raises(LandcoverError, match="could not be read"):
        deps.find_python(tmp_path / "root", "http://127.0.0.1:9/", lambda _: None, candidates=[str(venv / "bin" / "python")])
    with pytest.raises(LandcoverError, match="apt install python3-pip"):
        deps.find_python(None, None, lambda _: None, candidates=[str(venv / "bin" / "python")])


# -------------------------------------------------------------------------------------------- install

def install_args(wheelhouse):
    return ["--no-index", "--find-links", str(wheelhouse)]


@pytest.mark.parametrize("use_report", [True, False], ids=["resolved-then-installed", "old-pip-pruned"])
def test_install_into_a_private_folder(offline_pip, wheelhouse, tmp_path, use_report):
    target = tmp_path / "profile" / "landcover" / "python" / deps.interpreter_tag()
    feedback = Recorder()
    result = deps.install(target, ["fakeort>=1,<2"], feedback, interp=this_interpreter(), extra_args=install_args(wheelhouse),
                          use_report=use_report, verify_modules=["fakeort"])
    assert result.installed == {"fakeort": "1.5.0", "fakedep": "1.0.0"}  # numpy is QGIS' own: never installed
    assert (target / "fakeort" / "__init__.py").exists() and not list(target.glob("numpy*"))
    assert sorted(p.name for p in target.parent.iterdir()) == ["constraints.txt", target.name]  # no cache, temp, staging
    assert (target.parent / "constraints.txt").read_text().splitlines()[-1] == f"numpy=={numpy.__version__}"
    manifest = deps.manifest(target)
    assert manifest["installed"] == result.installed and manifest["constraints"] == [f"numpy=={numpy.__version__}"]
    assert any(line.startswith("$ ") and "--target" in line for line in feedback.lines)
    assert any("Checked: fakeort 1.5.0 imports" in line for line in feedback.lines)
    assert feedback.fractions[-1] == 1.0 and feedback.fractions == sorted(feedback.fractions)
    if not use_report:
        assert any(line.startswith("Not kept: numpy") for line in feedback.lines)


def test_a_failed_or_cancelled_install_leaves_the_folder_as_it_was(offline_pip, wheelhouse, tmp_path):
    target = tmp_path / "python" / deps.interpreter_tag()
    target.mkdir(parents=True)
    (target / "keep.txt").write_text("the previous install")
    with pytest.raises(LandcoverError, match="pip failed"):
        deps.install(target, ["doesnotexist>=1"], Recorder(), interp=this_interpreter(), extra_args=install_args(wheelhouse))
    with pytest.raises(Cancelled):
        deps.install(target, ["fakeort>=1,<2"], Recorder(cancel_after="$ "), interp=this_interpreter(),
                     extra_args=install_args(wheelhouse), verify_modules=["fakeort"])
    assert [p.name for p in target.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["constraints.txt", target.name]


def test_an_unreachable_index_is_named_with_the_fix(offline_pip, monkeypatch, tmp_path):
    """Offline, pip only says it found no version; the line says the index could not be reached."""
    monkeypatch.setenv("PIP_RETRIES", "1")
    target = tmp_path / "python" / deps.interpreter_tag()
    with pytest.raises(LandcoverError) as caught:
        deps.install(target, ["fakeort>=1,<2"], Recorder(), interp=this_interpreter(), index_url="http://127.0.0.1:9/simple/")
    message = str(caught.value)
    assert message.startswith("pip could not reach the package index http://127.0.0.1:9/simple/ (Failed to establish"), message
    assert "check the internet connection" in message and "\n" not in message
    assert not target.exists()


def test_a_build_that_does_not_import_is_not_installed(offline_pip, wheelhouse, tmp_path):
    target = tmp_path / "python" / deps.interpreter_tag()
    with pytest.raises(LandcoverError, match="does not import with QGIS' Python: ImportError: libcudart"):
        deps.install(target, ["fakeort-gpu"], Recorder(), interp=this_interpreter(), extra_args=install_args(wheelhouse),
                     verify_modules=["fakeort"])
    assert not target.exists()


def test_the_gpu_build_falls_back_to_the_cpu_package(offline_pip, wheelhouse, tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(deps, "requirements_for", lambda group="required", gpus=None: ["fakeort-gpu"] if gpus and group == "required"
                        else ["fakeort>=1"])
    target = tmp_path / "python" / deps.interpreter_tag()
    feedback = Recorder()
    result = deps.install(target, None, feedback, interp=this_interpreter(), extra_args=install_args(wheelhouse),
                          verify_modules=["fakeort"], gpus=["GPU 0: NVIDIA H200 (UUID: GPU-0)"])
    assert result.installed == {"fakeort": "1.5.0", "fakedep": "1.0.0"}
    assert any(line.startswith("Warning: onnxruntime-gpu did not install or import") for line in feedback.lines)


def test_a_forbidden_resolution_installs_nothing(offline_pip, wheelhouse, tmp_path):
    """PyTorch's CUDA build on a machine without a GPU (nvidia-* in the resolved set) is refused."""
    make_wheel(wheelhouse, "faketorch", "2.0.0", requires=("nvidia-fake-cublas",))
    make_wheel(wheelhouse, "nvidia-fake-cublas", "13.0.0")
    target = tmp_path / "python" / deps.interpreter_tag()
    with pytest.raises(LandcoverError, match="pip would install nvidia-fake-cublas==13.0.0 .*CUDA build"):
        deps.install(target, ["faketorch"], Recorder(), interp=this_interpreter(), extra_args=install_args(wheelhouse),
                     verify_modules=["faketorch"], forbid=("nvidia-",))
    assert not target.exists()


def test_activate_applies_a_pending_install_and_remove_deletes(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    target = tmp_path / "python" / "cp-tag"
    (target / "old").mkdir(parents=True)
    pending = tmp_path / "python" / ".pending-cp-tag"
    (pending / "new").mkdir(parents=True)
    (tmp_path / "python" / ".old-cp-tag-1-2").mkdir()
    assert deps.activate(target) is True
    assert sys.path[0] == str(target) and (target / "new").is_dir() and not (target / "old").exists()
    assert sorted(p.name for p in (tmp_path / "python").iterdir()) == ["cp-tag"]
    assert deps.remove(target) is False and not target.exists() and str(target) not in sys.path
    assert deps.activate(target) is False


def test_the_installer_runs_as_a_script(tmp_path):
    """QGIS' interpreter runs dependencies.py on its own (no package around it): probe."""
    proc = subprocess.run([sys.executable, str(REPO / "landcover_plugin" / "dependencies.py"), "probe", "--target",
                           str(tmp_path / "none")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "onnxruntime: " in proc.stdout and "numpy: " in proc.stdout
