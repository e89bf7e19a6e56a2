"""How likely each region of a photo is background: what is well connected to the frame.

Robust background detection (Zhu, Liang, Wei, Sun, CVPR 2014): the photo is cut into SLIC superpixels; the
geodesic colour distance between superpixels (sum of Lab steps along the cheapest path of neighbours) gives
each one a soft area (how much of the photo it reaches cheaply) and a soft length of frame border it reaches.
Walls, sky, road and their shadows reach a long border for their area; a vehicle, whose outline is a colour
step all round, reaches little. `1 − exp(−connectivity² / 2)` is then the background probability.

The same geodesic distances, measured from the top edge alone, find what is behind the vehicle: a wall or
sky reaches the top of the frame by small colour steps; a vehicle's roof (rarely cut by the frame) does not.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import dijkstra
from skimage.segmentation import slic

SEGMENTS = 260          # superpixels: enough for a wheel to be its own region on a 320-px copy
SIGMA_CLR = 10.0        # Lab units: geodesic distances below this make two superpixels "the same region"
SIGMA_BND = 1.0


def superpixels(rgb: np.ndarray) -> np.ndarray:
    return slic(rgb, n_segments=SEGMENTS, compactness=12, start_label=0, convert2lab=True, enforce_connectivity=True)


def background_probability(rgb: np.ndarray) -> np.ndarray:
    """H×W float32 background probability in [0, 1] for a small RGB copy."""
    return frame_evidence(rgb)[0]


def frame_evidence(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a small RGB copy: H×W float32 background probability in [0, 1], and H×W float32 geodesic colour
    distance (Lab units summed along the cheapest path of superpixels) to the top edge of the frame."""
    labels = superpixels(rgb)
    n = int(labels.max()) + 1
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab).reshape(-1, 3)
    flat = labels.ravel()
    count = np.bincount(flat, minlength=n).astype(np.float64)
    mean = np.stack([np.bincount(flat, lab[:, c], n) for c in range(3)], 1) / np.maximum(count, 1)[:, None]

    # neighbours: superpixel pairs that touch horizontally or vertically
    pairs = np.concatenate([np.stack([labels[:, :-1].ravel(), labels[:, 1:].ravel()], 1),
                            np.stack([labels[:-1].ravel(), labels[1:].ravel()], 1)])
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    pairs = np.unique(np.sort(pairs, 1), axis=0)
    step = np.linalg.norm(mean[pairs[:, 0]] - mean[pairs[:, 1]], axis=1) + 1e-3
    graph = coo_matrix((np.r_[step, step], (np.r_[pairs[:, 0], pairs[:, 1]], np.r_[pairs[:, 1], pairs[:, 0]])),
                       shape=(n, n)).tocsr()
    geodesic = dijkstra(graph, directed=False)
    reach = np.exp(-geodesic ** 2 / (2 * SIGMA_CLR ** 2))

    border = np.zeros(n, bool)
    border[np.unique(np.r_[labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = True
    connectivity = reach[:, border].sum(1) / np.sqrt(reach.sum(1))
    background = (1 - np.exp(-connectivity ** 2 / (2 * SIGMA_BND ** 2)))[labels].astype(np.float32)
    from_top = geodesic[:, np.unique(labels[0])].min(1)[labels].astype(np.float32)
    return background, from_top
