"""Speckle removal on a palette index map: small regions merge into the neighbouring colour they border most.

The map is cut into horizontal runs of one colour (a flat 4096² illustration has a few hundred thousand
runs for 16.7 M pixels). Everything then happens on runs: which runs touch (vertically, diagonally or
side by side), same-colour regions as connected components of touching equal-colour runs
(8-connectivity), region areas, and border lengths (4-neighbour pixel edges) between a region and each
colour around it. A pass recolours all small regions at once; passes repeat on the run graph, whose
geometry never changes, and the pixels are painted once at the end — the reference instead built a
full-image mask per small region.

A small region merges into the colour it shares the longest border with among its neighbours that are not
small; when all its neighbours are small (a cluster of specks), only the least (area, id) region of its
neighbourhood merges in that pass, so two specks never swap colours and every pass makes progress.
Pixels outside `protect` (the background) never change and are never a merge target, so the silhouette
stays exactly as it was; a small region bordered only by background is left as it is (`regions_left`).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

OUTSIDE = 255                 # code of protected pixels (palettes have at most 64 colours)


@dataclass
class DespeckleStats:
    regions_merged: int = 0
    pixels_changed: int = 0
    passes: int = 0
    regions_left: int = 0     # small regions with no colour to merge into (surrounded by background)

    def as_dict(self) -> dict:
        return asdict(self)


class RunGraph:
    """Runs of equal code along rows, and which runs touch. `codes`: H×W uint8, OUTSIDE = no region."""

    def __init__(self, codes: np.ndarray):
        h, w = codes.shape
        flat = codes.ravel()
        first = np.empty(flat.size, dtype=bool)
        first[0] = True
        np.not_equal(flat[1:], flat[:-1], out=first[1:])
        first[::w] = True
        self.shape = (h, w)
        self.start = np.flatnonzero(first)
        self.length = np.diff(self.start, append=flat.size)
        self.code = flat[self.start]
        row = self.start // w
        # Side-by-side runs in a row: one pixel edge each.
        same_row = np.flatnonzero(row[1:] == row[:-1])
        self.side = (same_row, same_row + 1)
        # Between rows r and r+1, every run start in either row cuts the row pair into segments with one
        # run above and one below; a segment is `seg_len` vertical pixel edges.
        keys = np.unique(np.concatenate([self.start[row < h - 1], self.start[row > 0] - w]))
        r, x = keys // w, keys % w
        end = np.append(keys[1:], h * w)
        seg_len = np.where(end // w == r, end % w, w) - x
        above = np.searchsorted(self.start, r * w + x, side="right") - 1
        below = np.searchsorted(self.start, (r + 1) * w + x, side="right") - 1
        self.vertical = (above, below, seg_len)
        # Diagonal contacts exist only where a segment begins inside the row (x > 0).
        j = np.flatnonzero(x > 0)
        self.diagonal = (np.concatenate([above[j - 1], above[j]]), np.concatenate([below[j], below[j - 1]]))

    def regions(self, code: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Regions for run codes `code`: (region of each run, area of each region, code of each region).
        OUTSIDE runs get region -1."""
        a = np.concatenate([self.vertical[0], self.diagonal[0]])
        b = np.concatenate([self.vertical[1], self.diagonal[1]])
        join = (code[a] == code[b]) & (code[a] != OUTSIDE)
        n = len(code)
        graph = coo_matrix((np.ones(int(join.sum()), dtype=np.int8), (a[join], b[join])), shape=(n, n))
        _, region = connected_components(graph, directed=False)
        inside = code != OUTSIDE
        # Renumber so regions count only inside runs; OUTSIDE runs → -1.
        ids, region_in = np.unique(region[inside], return_inverse=True)
        out = np.full(n, -1, dtype=np.int64)
        out[inside] = region_in
        area = np.bincount(region_in, weights=self.length[inside], minlength=len(ids)).astype(np.int64)
        region_code = np.empty(len(ids), dtype=np.uint8)
        region_code[region_in] = code[inside]
        return out, area, region_code

    def borders(self, region: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(region a, region b, shared 4-neighbour edge length) for touching runs of different regions,
        both directions, outside runs excluded."""
        ones = np.ones(len(self.side[0]), dtype=np.int64)
        a = np.concatenate([self.side[0], self.vertical[0]])
        b = np.concatenate([self.side[1], self.vertical[1]])
        n = np.concatenate([ones, self.vertical[2]])
        ra, rb = region[a], region[b]
        keep = (ra != rb) & (ra >= 0) & (rb >= 0)
        ra, rb, n = ra[keep], rb[keep], n[keep]
        return np.concatenate([ra, rb]), np.concatenate([rb, ra]), np.concatenate([n, n])

    def paint(self, code: np.ndarray) -> np.ndarray:
        return np.repeat(code, self.length).reshape(self.shape)


def _merge_targets(graph: RunGraph, region, area, region_code, min_area_px: int, n_colors: int):
    """Small regions that merge this pass, their new codes, and how many small regions cannot merge."""
    small = area < min_area_px
    src, dst, length = graph.borders(region)
    keep = small[src]
    src, dst, length = src[keep], dst[keep], length[keep]
    small_ids = np.flatnonzero(small)
    compact = np.full(len(area), -1, dtype=np.int64)
    compact[small_ids] = np.arange(len(small_ids))
    key = compact[src] * n_colors + region_code[dst]
    size = len(small_ids) * n_colors
    border = np.bincount(key, weights=length, minlength=size).reshape(-1, n_colors)
    stable = np.bincount(key, weights=length * ~small[dst], minlength=size).reshape(-1, n_colors)
    has_stable = stable.max(axis=1, initial=0) > 0
    has_any = border.max(axis=1, initial=0) > 0
    best = np.where(has_stable[:, None], stable, border).argmax(axis=1).astype(np.uint8)
    # Specks with only small neighbours merge only when they are the least (area, id) around them.
    rank = area * len(area) + np.arange(len(area))
    lowest_neighbour = np.full(len(small_ids), np.iinfo(np.int64).max)
    np.minimum.at(lowest_neighbour, compact[src], rank[dst])
    merges = has_stable | (has_any & (rank[small_ids] < lowest_neighbour))
    return small_ids[merges], best[merges], int((~has_any).sum())


def despeckle(indices: np.ndarray, min_area_px: int, protect: np.ndarray | None = None,
              max_passes: int = 64) -> tuple[np.ndarray, DespeckleStats]:
    """Merge every region under `min_area_px` pixels into a neighbouring colour; return (map, stats)."""
    if indices.ndim != 2 or indices.dtype != np.uint8:
        raise ValueError(f"indices must be an H×W uint8 map, got {indices.dtype} {indices.shape}")
    codes = indices.copy()
    if protect is not None:
        codes[~protect] = OUTSIDE
    graph = RunGraph(codes)
    code = graph.code.copy()
    n_colors = int(indices.max()) + 1
    stats = DespeckleStats()
    while stats.passes < max_passes and min_area_px > 1:
        region, area, region_code = graph.regions(code)
        merging, target, stats.regions_left = _merge_targets(graph, region, area, region_code, min_area_px,
                                                             n_colors)
        if not len(merging):
            break
        stats.passes += 1
        stats.regions_merged += len(merging)
        region_code[merging] = target
        inside = region >= 0
        code[inside] = region_code[region[inside]]
    if not stats.passes:
        return indices.copy(), stats
    painted = graph.paint(code)
    out = np.where(painted == OUTSIDE, indices, painted)
    stats.pixels_changed = int((out != indices).sum())
    return out, stats


def smallest_region(codes: np.ndarray) -> int:
    """Area of the smallest same-code region (8-connectivity), OUTSIDE excluded; 0 when there is none."""
    graph = RunGraph(codes)
    _, area, _ = graph.regions(graph.code)
    return int(area.min()) if len(area) else 0
