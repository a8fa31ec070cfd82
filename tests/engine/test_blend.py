import numpy as np
import pytest

from landcover_plugin.engine.blend import RowAccumulator, axis_weights, finalize, tile_weights
from landcover_plugin.engine.windows import window_rows


def test_axis_weights_are_flat_at_raster_edges_and_taper_inside():
    inner = axis_weights(100, 64, 1000)
    assert inner.min() > 0 and inner.max() == pytest.approx(1, abs=1e-3)
    assert inner[0] < 0.01 and inner[-1] < 0.01
    first = axis_weights(0, 64, 1000)
    assert (first[:32] == 1).all() and first[-1] < 0.01
    last = axis_weights(936, 64, 1000)
    assert (last[32:] == 1).all() and last[0] < 0.01


def test_padding_gets_zero_weight_except_at_raster_edges():
    w = axis_weights(100, 64, 1000, padding=8)
    assert (w[:8] == 0).all() and (w[-8:] == 0).all() and (w[8:-8] > 0).all()
    edge = axis_weights(0, 64, 1000, padding=8)
    assert (edge[:8] == 1).all() and (edge[-8:] == 0).all()


@pytest.mark.parametrize("padding", [0, 6])
def test_blending_identical_predictions_reproduces_them_exactly(padding):
    width, height, k, tile, overlap = 157, 121, 4, 48, 16
    rng = np.random.default_rng(1)
    truth = rng.dirichlet(np.ones(k), size=(height, width)).transpose(2, 0, 1).astype(np.float32)
    rows = window_rows(width, height, tile, overlap)
    acc = RowAccumulator(width, k, tile)
    out_classes, out_conf = [], []
    for i, row in enumerate(rows):
        for w in row:
            p = truth[:, w.row:w.row + w.height, w.col:w.col + w.width]
            acc.add(w, p, tile_weights(w, width, height, padding))
        final = rows[i + 1][0].row if i + 1 < len(rows) else height
        c, conf = acc.release(final, np.arange(k, dtype=np.uint8), 255)
        out_classes.append(c)
        out_conf.append(conf)
    classes, conf = np.concatenate(out_classes), np.concatenate(out_conf)
    assert classes.shape == (height, width)
    np.testing.assert_array_equal(classes, truth.argmax(0))
    np.testing.assert_allclose(conf, truth.max(0), rtol=1e-5)


def test_zero_weight_pixels_become_nodata():
    sums = np.ones((2, 1, 3), np.float32)
    weights = np.array([[1, 0, 2]], np.float32)
    classes, conf = finalize(sums, weights, np.array([5, 7], np.uint8), 255)
    assert classes.tolist() == [[5, 255, 5]]
    assert conf[0, 1] == -1


def test_finalize_matches_argmax_including_ties():
    rng = np.random.default_rng(3)
    sums = rng.integers(0, 4, (6, 40, 50)).astype(np.float32)  # many ties
    weights = np.ones((40, 50), np.float32)
    values = np.arange(10, 16, dtype=np.uint8)
    classes, conf = finalize(sums, weights, values, 255)
    np.testing.assert_array_equal(classes, values[sums.argmax(axis=0)])
    np.testing.assert_array_equal(conf, sums.max(axis=0))


@pytest.mark.parametrize("skip", [(), ((0, 0),), ((1, 2), (1, 3)), ((2, 0), (2, 1), (2, 2), (2, 3), (2, 4)), ((3, 4), (0, 4))])
def test_blending_matches_a_plain_weighted_sum_when_windows_are_skipped(skip):
    """Assigning first-touched pixels instead of adding (the buffer is never cleared) must equal a plain
    float64 weighted sum over the whole raster; skipped windows (all-nodata) leave zero weight."""
    width, height, k, tile, overlap = 170, 150, 3, 48, 12
    rng = np.random.default_rng(7)
    rows = window_rows(width, height, tile, overlap)
    sums, weights = np.zeros((k, height, width)), np.zeros((height, width))
    acc = RowAccumulator(width, k, tile)
    acc.sums[:], acc.weights[:] = np.nan, np.nan  # the buffer's initial content must never be read
    values = np.arange(k, dtype=np.uint8) + 1
    out_classes, out_conf = [], []
    for i, row in enumerate(rows):
        for j, w in enumerate(row):
            if (i, j) in skip:
                continue
            p = rng.dirichlet(np.ones(k), size=(w.height, w.width)).transpose(2, 0, 1).astype(np.float32)
            wt = tile_weights(w, width, height, 4)
            acc.add(w, p, wt)
            sums[:, w.row:w.row + w.height, w.col:w.col + w.width] += p * wt
            weights[w.row:w.row + w.height, w.col:w.col + w.width] += wt
        final = rows[i + 1][0].row if i + 1 < len(rows) else height
        c, conf = acc.release(final, values, 255)
        out_classes.append(c)
        out_conf.append(conf)
    classes, conf = np.concatenate(out_classes), np.concatenate(out_conf)
    covered = weights > 0
    assert (~covered).any() == bool(skip)  # skipping a window leaves pixels no weight covers
    np.testing.assert_array_equal(classes, np.where(covered, values[sums.argmax(0)], 255))
    np.testing.assert_allclose(conf[covered], (sums.max(0) / np.where(covered, weights, 1))[covered], rtol=1e-5)
    assert (conf[~covered] == -1).all()


def test_tile_weights_are_the_outer_product_of_axis_weights_shared_read_only():
    rows = window_rows(1000, 700, 64, 16)
    inner, other, corner = rows[2][3], rows[4][5], rows[0][0]
    weights = tile_weights(inner, 1000, 700, 4)
    np.testing.assert_array_equal(weights, np.outer(axis_weights(inner.row, 64, 700, 4), axis_weights(inner.col, 64, 1000, 4)))
    assert tile_weights(other, 1000, 700, 4) is weights  # same size, no raster edge: one shared array
    np.testing.assert_array_equal(tile_weights(corner, 1000, 700, 4),
                                  np.outer(axis_weights(0, 64, 700, 4), axis_weights(0, 64, 1000, 4)))
    with pytest.raises(ValueError):
        weights[0, 0] = 1  # read-only: the blender must not change a shared array
