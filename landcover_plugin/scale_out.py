"""Scale-out on Dask (https://www.dask.org): one raster split into bands of output rows, each band
classified by a Dask task into a part file, the parts assembled into a COG (or kept behind a VRT).

Each part is computed from exactly the windows of the whole raster's grid that touch its rows, added
in the same order (``ClassifyParams.row_range``), so the assembled output is identical to a
single-process run. Parts are written under temporary names and renamed when complete; a run that is
killed keeps its finished parts in ``OUTPUT.parts/`` and the next run with the same arguments skips
them (and removes the killed run's temporaries). Schedulers: ``local[N]`` (a ``LocalCluster`` of N
single-threaded worker processes on this machine) or ``tcp://HOST:PORT`` (an existing
``dask.distributed`` scheduler whose workers see the same paths).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from osgeo import gdal

from .engine.classify import ClassifyParams, classify, output_grid
from .engine.reader import gdal_cache, gdal_errors, last_error
from .engine.writer import finish_class_raster
from .errors import LandcoverError
from .feedback import Feedback
from .model.adapter import read_metadata, sha256
from .model.registry import resolve_model
from .outputs import AtomicOutputs, check_output_path, remove_stale, sidecars

DEFAULT_PART_ROWS = 2048


@dataclass
class ScaleOutResult:
    """Parts of a Dask run, how many were skipped as already finished, seconds per part, providers."""

    output: Path
    scheduler: str
    parts: int
    skipped: int
    providers: list[str]
    part_seconds: list[float]

    def summary(self) -> str:
        return (f"Wrote {self.output}: {self.parts} parts on {self.scheduler} ({self.skipped} skipped as already "
                f"finished), providers {', '.join(self.providers) or 'n/a'}")


def plan_parts(height: int, part_rows: int) -> list[tuple[int, int]]:
    """Row ranges ``[(y0, y1), ...]`` of at most ``part_rows`` px covering ``0..height``."""
    if part_rows < 1:
        raise LandcoverError(f"part rows must be at least 1, got {part_rows}")
    return [(y, min(y + part_rows, height)) for y in range(0, height, part_rows)]


def _part_path(folder: Path, y0: int, y1: int) -> Path:
    return folder / f"part_{y0:08d}_{y1:08d}.tif"


def _classify_part(params: ClassifyParams, y0: int, y1: int, path: str) -> dict:
    """Dask task: classify rows ``[y0, y1)`` into ``path`` unless a finished part is already there."""
    if Path(path).exists():
        return {"part": path, "skipped": True}
    with gdal_cache():
        result = classify(replace(params, output=path, confidence=None, areas=None, row_range=(y0, y1)))
    return {"part": path, "skipped": False, "provider": result.provider, "seconds": result.seconds}


def parse_scheduler(scheduler: str) -> int | None:
    """Workers of ``local[N]`` (N >= 1), or ``None`` for a ``tcp://`` address. Raises ``LandcoverError``."""
    local = re.fullmatch(r"local\[(\d+)\]", scheduler)
    if local and int(local.group(1)) >= 1:
        return int(local.group(1))
    if scheduler.startswith("tcp://") and len(scheduler) > len("tcp://"):
        return None
    raise LandcoverError(f"scheduler must be local[N] with N >= 1 or tcp://HOST:PORT, got {scheduler!r}")


def _client(scheduler: str):
    workers = parse_scheduler(scheduler)
    if workers:
        # A failing part raises its one-line error here; the local workers must not also log it with a traceback.
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "critical")
    from distributed import Client, LocalCluster

    if workers:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), max(1, (os.cpu_count() or 1) // workers)
    try:
        return Client(scheduler, timeout="20s"), None
    except OSError as exc:
        raise LandcoverError(f"cannot reach the Dask scheduler {scheduler}: {exc}") from None


def _assemble(parts: list[Path], output: Path, meta, tags: dict) -> None:
    """Parts → a VRT (``.vrt`` output, parts kept) or a COG with mode overviews (``.tif`` output)."""
    as_vrt = output.suffix.lower() == ".vrt"
    with AtomicOutputs() as outputs, gdal_errors():
        tmp = outputs.add(output)
        vrt_path = tmp if as_vrt else parts[0].parent / "parts.vrt"
        vrt = gdal.BuildVRT(str(vrt_path), [str(p) for p in parts])
        if vrt is None:
            raise LandcoverError(f"GDAL could not build a VRT over the parts in {parts[0].parent}: {last_error()}")
        vrt.SetMetadata(tags)
        if not as_vrt:
            options = gdal.TranslateOptions(format="COG", creationOptions=[
                "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER", "OVERVIEW_RESAMPLING=MODE", "BLOCKSIZE=256"])
            if gdal.Translate(str(tmp), vrt, options=options) is None:
                raise LandcoverError(f"GDAL could not write the COG {output}: {last_error()}: check the free disk space")
        vrt = None
        finish_class_raster(outputs, tmp, output, meta)
        outputs.commit()


def classify_dask(params: ClassifyParams, scheduler: str, part_rows: int = DEFAULT_PART_ROWS,
                  feedback: Feedback | None = None) -> ScaleOutResult:
    """Classify ``params.input`` on Dask into ``params.output`` (``.tif``: COG; ``.vrt``: VRT over the
    parts).

    Every argument is checked before anything is written. Raises ``LandcoverError`` for bad arguments
    (as ``classify``), an unknown scheduler, or a confidence or class-area output (not supported here)."""
    feedback = feedback or Feedback()
    if params.confidence or params.areas:
        raise LandcoverError("--confidence and --areas are not supported with --scheduler yet: run without a scheduler")
    parse_scheduler(scheduler)
    if part_rows < 1:
        raise LandcoverError(f"part rows must be at least 1, got {part_rows}")
    input_path = Path(params.input)  # type: ignore[arg-type]
    suffixes = (".tif", ".tiff", ".vrt")
    output = check_output_path(params.output, "output", suffixes, (input_path,), sidecars(params.output))
    folder = output.with_name(output.name + ".parts")
    if folder.exists() and not folder.is_dir():
        raise LandcoverError(f"{folder} exists and is not a folder: move it away (the parts of a run go there)")
    model_path = resolve_model(params.model)
    meta = read_metadata(model_path)
    height = output_grid(params, suffixes).height  # validates the input, bands and resolution before any work
    ranges = plan_parts(height, part_rows)
    folder.mkdir(exist_ok=True)
    try:
        return _run_parts(params, scheduler, part_rows, feedback, input_path, output, folder, model_path, meta, ranges)
    except BaseException:
        if folder.is_dir() and not any(folder.glob("part_*.tif")):  # nothing finished to resume from: no trace
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _run_parts(params: ClassifyParams, scheduler: str, part_rows: int, feedback: Feedback, input_path: Path, output: Path,
               folder: Path, model_path: Path, meta, ranges: list[tuple[int, int]]) -> ScaleOutResult:
    remove_stale(folder)
    # Parts are reused only by a run with the same arguments (a different model or tiling would differ).
    fingerprint = {"input": str(input_path.resolve()), "model_sha256": sha256(model_path), "part_rows": part_rows,
                   **{k: v for k, v in asdict(params).items()
                      if k in ("tile_size_px", "overlap_px", "bands", "tta", "gsd", "output_resolution")}}
    recorded = folder / "arguments.json"
    if recorded.exists() and json.loads(recorded.read_text()) != json.loads(json.dumps(fingerprint)):
        raise LandcoverError(f"{folder} holds parts of a run with other arguments ({recorded}): delete the folder "
                             "or rerun with the same arguments")
    recorded.write_text(json.dumps(fingerprint, indent=2))
    finished = sum(_part_path(folder, *r).exists() for r in ranges)
    if finished:
        feedback.info(f"Resuming: {finished} of {len(ranges)} parts already finished in {folder}")
    client, threads = _client(scheduler)
    try:
        task = replace(params, threads=params.threads or threads)
        futures = [client.submit(_classify_part, task, y0, y1, str(_part_path(folder, y0, y1)), pure=False)
                   for y0, y1 in ranges]
        results = client.gather(futures)
    finally:
        client.close()
        if client.cluster is not None:
            client.cluster.close()
    parts = [_part_path(folder, *r) for r in ranges]
    first = gdal.Open(str(parts[0]))
    tags = dict(first.GetMetadata())
    first = None
    tags.update(LANDCOVER_SCHEDULER=scheduler, LANDCOVER_PARTS=str(len(parts)))
    _assemble(parts, output, meta, tags)
    if output.suffix.lower() != ".vrt":
        shutil.rmtree(folder)
    result = ScaleOutResult(output, scheduler, len(parts), sum(r["skipped"] for r in results),
                            sorted({r["provider"] for r in results if not r["skipped"]}),
                            [round(r.get("seconds", 0), 2) for r in results])
    feedback.info(result.summary())
    return result
