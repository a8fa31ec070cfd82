"""Web map services on 127.0.0.1 for tests, no network needed: XYZ tiles cut by ``gdal2tiles.py --xyz``
(served from disk through a ``file://`` URL or by ``TileServer`` over HTTP) and a real WMS served by
QGIS Server's development server ``qgis_mapserver`` (``MapServer``).

Both servers can be made slow or absent on purpose, the way web services fail: ``TileServer`` holds
every request while its ``gate`` file exists and answers 503 while its ``down`` file exists;
``MapServer`` stops while its ``down`` file exists and starts again once it is gone.
"""
from __future__ import annotations

import http.server
import math
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from osgeo import gdal

from tests.fixtures import REPO

WEB_MERCATOR_WORLD = 2 * math.pi * 6378137.0
MAPSERVER = shutil.which("qgis_mapserver")
GDAL2TILES = shutil.which("gdal2tiles.py")


def zoom_pixel_m(zoom: int) -> float:
    """Web Mercator map metres per pixel of 256 px tiles at ``zoom``."""
    return WEB_MERCATOR_WORLD / 256 / 2 ** zoom


def xyz_tiles(source: Path, folder: Path, zmin: int = 15, zmax: int = 19) -> Path:
    """Cut XYZ tiles of ``source`` into ``folder`` (``folder/{z}/{x}/{y}.png``) with gdal2tiles. The
    source is first warped to EPSG:3857 at exactly zoom ``zmax``'s pixel size on its tile grid, so the
    ``zmax`` tiles hold that warp's pixels unchanged; returns the warped raster (the same imagery as a
    file)."""
    folder.mkdir(parents=True, exist_ok=True)
    warped = folder / "mercator.tif"
    res = zoom_pixel_m(zmax)
    gdal.Warp(str(warped), str(source), options=gdal.WarpOptions(dstSRS="EPSG:3857", xRes=res, yRes=res,
                                                                 targetAlignedPixels=True, resampleAlg="cubic"))
    subprocess.run([sys.executable, GDAL2TILES, "--xyz", "-z", f"{zmin}-{zmax}", "-w", "none", "--processes=1", "-q",
                    str(warped), str(folder)], check=True, capture_output=True)
    return warped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TileServer:
    """Serves ``folder`` over HTTP on 127.0.0.1 in a thread (a context manager). ``url`` is an XYZ
    template. While the file ``gate`` exists every request waits (at most 60 s); while ``down`` exists
    every request gets 503. ``requests`` counts what was asked."""

    def __init__(self, folder: Path):
        self.folder, self.gate, self.down = folder, folder.parent / "gate", folder.parent / "down"
        self.requests = 0
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def do_GET(self):  # noqa: N802
                server.requests += 1
                waited = time.monotonic()
                while server.gate.exists() and time.monotonic() - waited < 60:
                    time.sleep(0.05)
                if server.down.exists():
                    self.send_error(503, "service down (test)")
                    return
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{{z}}/{{x}}/{{y}}.png"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> TileServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def xyz_uri(url: str, zmin: int = 15, zmax: int = 19) -> str:
    """A QGIS XYZ layer URI (provider ``wms``)."""
    return f"type=xyz&url={url}&zmin={zmin}&zmax={zmax}"


PROJECT_SCRIPT = """
import sys
from qgis.core import QgsApplication, QgsProject, QgsRasterLayer
app = QgsApplication([], False); app.initQgis()
raster, qgs = sys.argv[1], sys.argv[2]
project = QgsProject.instance()
layer = QgsRasterLayer(raster, "ortho")
assert layer.isValid(), raster
project.addMapLayer(layer)
project.setCrs(layer.crs())
e = layer.extent()
project.writeEntry("WMSServiceCapabilities", "/", True)
project.writeEntry("WMSExtent", "/", [repr(v) for v in (e.xMinimum(), e.yMinimum(), e.xMaximum(), e.yMaximum())])
project.writeEntry("WMSCrsList", "/", [layer.crs().authid(), "EPSG:3857"])
assert project.write(qgs)
del layer
app.exitQgis()
"""


class MapServer:
    """QGIS Server's development server publishing ``raster`` as WMS layer ``ortho`` on 127.0.0.1 (a
    context manager). While the file ``down`` exists the server is stopped; once it is gone it starts
    again (a watcher thread), so a test can take the service away during a view and bring it back."""

    def __init__(self, raster: Path, work: Path, crs: str = "EPSG:2154"):
        self.work, self.project, self.crs = work, work / "ortho.qgs", crs
        self.down = work / "down"
        env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_RUNTIME_DIR=str(work))
        subprocess.run([sys.executable, "-c", PROJECT_SCRIPT, str(raster), str(self.project)], check=True, env=env,
                       capture_output=True, cwd=REPO)
        self.port = free_port()
        self.env = dict(env, QGIS_PROJECT_FILE=str(self.project), QGIS_SERVER_LOG_LEVEL="2")
        self.process: subprocess.Popen | None = None
        self.stop_watch = threading.Event()
        self.watcher = threading.Thread(target=self._watch, daemon=True)

    @property
    def uri(self) -> str:
        """A QGIS WMS layer URI for layer ``ortho`` (PNG, in ``crs``)."""
        return (f"contextualWMSLegend=0&crs={self.crs}&dpiMode=7&format=image/png&layers=ortho&styles="
                f"&url=http://127.0.0.1:{self.port}/")

    def get_map(self, path: Path, width: int, height: int, geotransform, wkt: str) -> Path:
        """One WMS GetMap of the grid (north-up ``geotransform``, ``width`` × ``height`` px) saved as a
        georeferenced GeoTIFF: what the service serves there, as a file."""
        x0, dx, _, y1, _, dy = geotransform
        bbox = f"{x0!r},{y1 + height * dy!r},{x0 + width * dx!r},{y1!r}"
        url = (f"http://127.0.0.1:{self.port}/?SERVICE=WMS&VERSION=1.3.0&REQUEST=GetMap&LAYERS=ortho&STYLES="
               f"&CRS={self.crs}&BBOX={bbox}&WIDTH={width}&HEIGHT={height}&FORMAT=image/png")
        png = path.with_suffix(".png")
        png.write_bytes(urllib.request.urlopen(url, timeout=60).read())
        src = gdal.Open(str(png))
        out = gdal.Translate(str(path), src, options=gdal.TranslateOptions(format="GTiff", bandList=[1, 2, 3],
                                                                           outputSRS=wkt))
        out.SetGeoTransform(tuple(geotransform))
        out = src = None
        return path

    def start(self) -> None:
        self.process = subprocess.Popen([MAPSERVER, f"127.0.0.1:{self.port}"], env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("qgis_mapserver did not start within 60 s")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)
            self.process = None

    def _watch(self) -> None:
        while not self.stop_watch.is_set():
            if self.down.exists() and self.process is not None:
                self.stop()
            elif not self.down.exists() and self.process is None:
                self.start()
            time.sleep(0.1)

    def __enter__(self) -> MapServer:
        self.start()
        self.watcher.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_watch.set()
        self.watcher.join(timeout=5)
        self.stop()
