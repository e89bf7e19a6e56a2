"""Speckle removal: no region under the limit is left, background untouched, longest border wins."""
import numpy as np
from skimage.measure import label

from v2v_resources.chroma.despeckle import OUTSIDE, RunGraph, despeckle, smallest_region


def region_areas(codes: np.ndarray) -> np.ndarray:
    labels = label(codes.astype(np.int32), background=OUTSIDE, connectivity=2)
    return np.bincount(labels.ravel())[1:]


def test_run_graph_regions_equal_skimage_labels():
    rng = np.random.default_rng(3)
    for _ in range(10):
        codes = rng.integers(0, 3, (37, 53)).astype(np.uint8)
        codes[rng.random(codes.shape) < 0.2] = OUTSIDE
        graph = RunGraph(codes)
        _, area, _ = graph.regions(graph.code)
        assert sorted(area) == sorted(region_areas(codes))


def test_no_region_under_limit_and_background_untouched():
    rng = np.random.default_rng(4)
    idx = np.zeros((300, 400), np.uint8)
    for _ in range(40):   # blocks of colour, then noise specks everywhere
        y, x = rng.integers(0, 280), rng.integers(0, 380)
        idx[y:y + rng.integers(10, 120), x:x + rng.integers(10, 120)] = rng.integers(0, 6)
    specks = rng.random(idx.shape) < 0.02
    idx[specks] = rng.integers(0, 6, specks.sum())
    protect = np.zeros(idx.shape, bool)
    protect[30:270, 20:380] = True
    out, stats = despeckle(idx, 150, protect)
    assert np.array_equal(out[~protect], idx[~protect])
    inside = np.where(protect, out, OUTSIDE).astype(np.uint8)
    assert region_areas(inside).min() >= 150
    assert smallest_region(inside) == region_areas(inside).min()
    assert stats.regions_merged > 100 and stats.passes >= 1 and stats.regions_left == 0
    assert stats.pixels_changed == int((out != idx).sum()) > 0
    assert set(np.unique(out[protect])) <= set(np.unique(idx[protect]))


def test_merges_into_the_colour_with_the_longest_border():
    idx = np.zeros((60, 60), np.uint8)
    idx[:, 30:] = 1
    idx[20:30, 27:37] = 2          # borders colour 0 over 16 pixel edges, colour 1 over 24
    out, stats = despeckle(idx, 200)
    assert (out[20:30, 27:37] == 1).all() and stats.regions_merged == 1 and stats.pixels_changed == 100


def test_background_is_never_a_merge_target():
    idx = np.full((50, 50), 3, np.uint8)
    idx[10:14, 10:14] = 1          # a small island surrounded by background only
    idx[30:45, 30:45] = 2
    idx[36:39, 36:39] = 0          # a speck inside region 2
    protect = np.zeros(idx.shape, bool)
    protect[10:14, 10:14] = protect[30:45, 30:45] = True
    out, stats = despeckle(idx, 20, protect)
    assert (out[36:39, 36:39] == 2).all()
    assert (out[10:14, 10:14] == 1).all() and stats.regions_left == 1
    assert np.array_equal(out[~protect], idx[~protect])


def test_cluster_of_specks_terminates_without_swapping():
    rng = np.random.default_rng(5)
    idx = rng.integers(0, 4, (64, 64)).astype(np.uint8)       # everything is a speck at first
    out, stats = despeckle(idx, 40)
    assert region_areas(out).min() >= 40 and stats.passes < 64
