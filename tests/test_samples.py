"""Synthetic sample photos: deterministic per seed, ground truth consistent with the pixels."""
import json

import numpy as np
import pytest

from v2v_resources.imaging import load_mask, load_photo
from v2v_resources.samples import draw_sample, generate_samples


def inside(box, outer):
    return outer[0] <= box[0] < box[2] <= outer[2] and outer[1] <= box[1] < box[3] <= outer[3]


def test_same_seed_same_photo_other_seed_other_photo():
    a, mask_a, parts_a = draw_sample(7, (320, 240))
    b, mask_b, parts_b = draw_sample(7, (320, 240))
    c, mask_c, _ = draw_sample(8, (320, 240))
    assert np.array_equal(a, b) and np.array_equal(mask_a, mask_b) and parts_a == parts_b
    assert not np.array_equal(mask_a, mask_c)
    assert np.abs(a.astype(int) - c.astype(int)).mean() > 5


def test_size_is_width_by_height():
    rgb, mask, _ = draw_sample(1, (400, 300))
    assert rgb.shape == (300, 400, 3) and rgb.dtype == np.uint8
    assert mask.shape == (300, 400) and mask.dtype == bool


@pytest.mark.parametrize("seed", [0, 3, 11])
def test_parts_lie_on_the_vehicle(seed):
    _, mask, parts = draw_sample(seed)
    assert 0.08 < mask.mean() < 0.5
    ys, xs = np.nonzero(mask)
    vbox = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
    labels = {p["label"] for p in parts}
    assert {"license plate", "brand badge", "side view mirror", "text"} <= labels
    for part in parts:
        x1, y1, x2, y2 = part["box"]
        assert inside(part["box"], vbox), part
        # each part is painted on the car: its box is (nearly) all vehicle
        assert mask[y1:y2, x1:x2].mean() > 0.9, part
    plate = next(p for p in parts if p["label"] == "license plate")
    assert len(plate["text"]) == 6


def test_generate_writes_photo_mask_and_truth(tmp_path):
    paths = generate_samples(tmp_path, 2, seed=5, size=(512, 384))
    assert [p.name for p in paths] == ["sample-00005.jpg", "sample-00006.jpg"]
    for path, seed in zip(paths, (5, 6)):
        truth = json.loads(path.with_suffix(".json").read_text())
        assert truth["seed"] == seed and truth["size"] == [512, 384] and truth["image"] == path.name
        photo = load_photo(path)
        assert photo.rgb.shape == (384, 512, 3)
        rgb, mask, parts = draw_sample(seed, (512, 384))
        saved = load_mask(tmp_path / truth["vehicle_mask"])
        assert np.array_equal(saved, mask)
        assert truth["parts"] == parts
        ys, xs = np.nonzero(saved)
        assert truth["vehicle_box"] == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        # JPEG at quality 92 stays close to the drawn pixels
        assert np.abs(photo.rgb.astype(int) - rgb.astype(int)).mean() < 4
