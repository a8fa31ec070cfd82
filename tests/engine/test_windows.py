import numpy as np
import pytest

from landcover_plugin.engine.windows import starts, window_rows
from landcover_plugin.errors import LandcoverError


@pytest.mark.parametrize("origin", [0, 1, 97, -3_000_101])
@pytest.mark.parametrize("length,tile,overlap", [(1000, 256, 32), (513, 512, 64), (512, 512, 64), (100, 512, 64),
                                                 (1243, 512, 128), (7, 3, 2), (10, 3, 0), (8192, 1024, 256)])
def test_windows_cover_every_pixel_and_stay_inside(length, tile, overlap, origin):
    offsets = starts(length, tile, overlap, origin)
    size = min(tile, length)
    covered = np.zeros(length, int)
    for o in offsets:
        assert 0 <= o and o + size <= length
        covered[o:o + size] += 1
    assert covered.min() >= 1
    assert offsets[-1] + size == length  # the last window is flush with the edge
    assert offsets == sorted(set(offsets))
    steps = np.diff(offsets)
    stride = tile - overlap
    assert (steps[1:-1] == stride).all()  # inner windows: the overlap asked for
    assert (steps <= stride + overlap // 2).all()  # edge windows: at least half of it
    assert all((origin + o) % stride == 0 for o in offsets[1:-1])  # inner windows sit on the lattice


def test_a_crop_shares_the_inner_windows_of_the_raster_it_was_cut_from():
    """Anchored to the map lattice, a raster cut 173 px in keeps every window of the original that lies
    more than a tile inside it; without a lattice (origin 0 for both) none would be kept."""
    tile, overlap, length, cut = 1024, 256, 8192, 173
    whole = set(starts(length, tile, overlap, origin=1000))
    cropped = {o + cut for o in starts(length - cut, tile, overlap, origin=1000 + cut)}
    inner = {o for o in whole if cut + tile <= o < length - tile}
    assert inner and inner <= cropped
    assert not inner & {o + cut for o in starts(length - cut, tile, overlap)}


def test_exact_fit_has_no_extra_window():
    assert starts(1024, 512, 0) == [0, 512]
    assert starts(896, 512, 128) == [0, 384]
    assert starts(900, 512, 128) == [0, 388]  # 384 lies within overlap // 2 of the last window: left out
    assert starts(1000, 256, 32, origin=10) == [0, 214, 438, 662, 744]


def test_window_rows_shape():
    rows = window_rows(width=1000, height=600, tile=512, overlap=64)
    assert [len(r) for r in rows] == [3, 3]
    assert rows[1][2].col == 1000 - 512 and rows[1][2].row == 600 - 512
    small = window_rows(width=40, height=30, tile=512, overlap=64)
    assert small[0][0].width == 40 and small[0][0].height == 30


@pytest.mark.parametrize("tile,overlap", [(0, 0), (64, 64), (64, -1)])
def test_bad_tile_or_overlap_is_an_error(tile, overlap):
    with pytest.raises(LandcoverError, match="tile size|overlap"):
        starts(100, tile, overlap)
