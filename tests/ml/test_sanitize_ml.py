"""Phase I ml engine on tiny GroundingDINO + SAM + LaMa: real loaders, thresholds, part filtering, inpainting."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from v2v_resources.errors import QualityError
from v2v_resources.sanitize.ml import MlSanitizer
from v2v_resources.settings import load_settings


def test_sanitize_result_is_consistent(ml_sanitizer, car):
    rgb, _ = car
    r = ml_sanitizer.sanitize(rgb)
    assert r.backend == "ml" and r.clean.shape == rgb.shape and r.clean.dtype == np.uint8
    assert r.vehicle_mask.shape == rgb.shape[:2] and r.vehicle_mask.dtype == bool and r.vehicle_mask.any()
    # only the erased pixels may change
    assert np.array_equal(r.clean[~r.erased_mask], rgb[~r.erased_mask])
    assert r.metrics["erased_share"] <= ml_sanitizer.cfg.quality.max_erased_share
    assert r.metrics["attempts"] == 1 and r.detections[0]["label"] == "vehicle"
    cfg = ml_sanitizer.cfg.detector
    for d in r.detections[1:]:
        assert d["score"] >= cfg.box_threshold
        box_area = (d["box"][2] - d["box"][0]) * (d["box"][3] - d["box"][1])
        vb = r.detections[0]["box"]
        if d["kept"]:
            assert box_area <= cfg.max_part_share * (vb[2] - vb[0]) * (vb[3] - vb[1]) + 1e-6
        else:
            assert d["why"]                               # every dropped part says why


def test_thresholds_really_apply(ml_sanitizer, car):
    rgb, _ = car
    det = ml_sanitizer.detector
    prompts = ml_sanitizer.cfg.detector.part_prompts
    low = det.detect(rgb, prompts, box_threshold=0.0, text_threshold=0.0)
    mid = det.detect(rgb, prompts, box_threshold=0.6, text_threshold=0.0)
    assert len(low) == 20 and 0 < len(mid) < len(low)      # 20 = the tiny model's queries
    assert all(d.score >= 0.6 for d in mid)


def test_no_vehicle_fails_after_every_variation(store, car):
    s = load_settings(overrides={"hardware": {"device": "cpu"}, "phase1": {
        "detector": {"box_threshold": 1.0, "text_threshold": 1.0},
        "retry": {"max_attempts": 2, "variations": [{"box_threshold": 1.0, "text_threshold": 1.0}]}}})
    from v2v_resources.vram import VramManager

    san = MlSanitizer(s.phase1, store, VramManager(s.hardware))
    with pytest.raises(QualityError) as e:
        san.sanitize(car[0])
    assert str(e.value).count("no vehicle detected") == 2


def test_alpha_is_the_silhouette(ml_sanitizer, car):
    rgb, mask = car
    r = ml_sanitizer.sanitize(rgb, alpha=mask.astype(np.uint8) * 255)
    assert np.array_equal(r.vehicle_mask, mask) and r.detections[0]["why"] == "alpha"


def test_silhouette_and_sam_checkpoint_shapes(ml_sanitizer, store, car):
    from tiny_models import tiny_sam
    from v2v_resources.sanitize.segment import sam_from_state_dict

    rgb, mask = car
    sil = ml_sanitizer.silhouette(rgb[::2, ::2].copy(), mask)      # hint at another size is resized
    assert sil.shape == (48, 64) and sil.dtype == bool
    sd = torch.load(store.require("sam"), weights_only=True)
    rebuilt = sam_from_state_dict(sd)
    ref = tiny_sam()
    assert rebuilt.image_encoder.blocks[1].window_size == 0 and rebuilt.image_encoder.blocks[0].window_size == 4
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in ref.parameters())


def test_lama_fills_only_the_hole_at_bounded_size(ml_sanitizer, car):
    rgb, _ = car
    hole = np.zeros(rgb.shape[:2], bool)
    hole[60:72, 50:78] = True
    out = ml_sanitizer.inpainter.inpaint(rgb, hole, resize_limit=64)     # works at 64 px, pastes at 96×128
    assert out.shape == rgb.shape and np.array_equal(out[~hole], rgb[~hole])
    assert not np.array_equal(out[hole], rgb[hole])
    assert np.array_equal(ml_sanitizer.inpainter.inpaint(rgb, np.zeros_like(hole), resize_limit=64), rgb)



def test_parts_are_masked_dilated_bounded_and_inpainted(store, car):
    from v2v_resources.vram import VramManager

    rgb, mask = car
    s = load_settings(overrides={"hardware": {"device": "cpu"}, "phase1": {
        "detector": {"box_threshold": 0.0, "text_threshold": 0.0, "max_part_share": 0.6},
        "quality": {"min_vehicle_area": 0.0, "max_erased_share": 0.3}}})
    r = MlSanitizer(s.phase1, store, VramManager(s.hardware)).sanitize(rgb, alpha=mask.astype(np.uint8) * 255)
    kept = [d for d in r.detections[1:] if d["kept"]]
    assert kept and r.erased_mask.any()
    assert 0 < r.metrics["erased_share"] <= 0.3
    assert r.erased_mask.sum() <= 0.3 * mask.sum()
    assert any("max_erased_share" in d["why"] for d in r.detections)      # the bound dropped a part
    changed = (r.clean != rgb).any(axis=2)
    assert changed.any() and not (changed & ~r.erased_mask).any()


def test_only_the_best_max_parts_are_segmented(store, car):
    from v2v_resources.vram import VramManager

    rgb, mask = car
    s = load_settings(overrides={"hardware": {"device": "cpu"}, "phase1": {
        "detector": {"box_threshold": 0.0, "text_threshold": 0.0, "max_part_share": 1.0, "max_parts": 3},
        "quality": {"min_vehicle_area": 0.0, "max_erased_share": 1.0}}})
    r = MlSanitizer(s.phase1, store, VramManager(s.hardware)).sanitize(rgb, alpha=mask.astype(np.uint8) * 255)
    parts = r.detections[1:]
    capped = [d for d in parts if d["why"] == "beyond max_parts 3"]
    assert len(parts) == 20 and len(capped) == 20 - 3                   # all 20 queries pass threshold 0
    assert min(d["score"] for d in parts if d not in capped) >= max(d["score"] for d in capped)


def test_sam_embeds_each_image_once(ml_sanitizer, car):
    """The vehicle box and then the part boxes are prompts on one image: SAM's encoder runs once for both, and
    an image's embedding outlives another image's (a host interleaves the requests of several images)."""
    rgb = np.roll(car[0], 3, axis=1)            # an image no earlier test of this module embedded
    calls = []
    ml_sanitizer.segmenter                      # loaded (and registered) on first use
    sam = ml_sanitizer.vram.acquire("sam")
    hook = sam.image_encoder.register_forward_hook(lambda *_: calls.append(1))
    try:
        first = ml_sanitizer.segmenter.masks(rgb, np.array([[10, 10, 60, 60]]))
        again = ml_sanitizer.segmenter.masks(rgb, np.array([[10, 10, 60, 60], [20, 30, 90, 80]]))
        ml_sanitizer.segmenter.masks(rgb[:, ::-1].copy(), np.array([[10, 10, 60, 60]]))
        back = ml_sanitizer.segmenter.masks(rgb, np.array([[10, 10, 60, 60]]))
    finally:
        hook.remove()
    assert len(calls) == 2                      # later calls on the first image reused its embedding
    assert np.array_equal(first[0], back[0])
    assert np.array_equal(first[0], again[0])
