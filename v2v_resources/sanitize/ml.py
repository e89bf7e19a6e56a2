"""Phase I on the ml backend: GroundingDINO finds the vehicle and its parts, SAM masks them, LaMa erases them.

Unlike the reference, part boxes that cover too much of the vehicle are dropped (and reported) instead of
erasing the car, and the detector thresholds are the configured ones on every attempt.
"""
from __future__ import annotations

import time
from functools import cached_property

import cv2
import numpy as np

from ..errors import QualityError
from ..models.verify import ModelStore
from ..settings import Phase1
from ..vram import VramManager
from .base import SanitizeResult
from .detect import Detection, GroundingDinoDetector
from .inpaint import LamaInpainter
from .segment import SamSegmenter

PHASE = "phase1"


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)


def _intersects(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0 or not mask.any():
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _clip_to_box(mask: np.ndarray, box) -> np.ndarray:
    x1, y1, x2, y2 = int(box[0]), int(box[1]), int(np.ceil(box[2])), int(np.ceil(box[3]))
    out = np.zeros_like(mask)
    out[y1:y2, x1:x2] = mask[y1:y2, x1:x2]
    return out


def _record(d: Detection, kept: bool, why: str = "") -> dict:
    return {"label": d.label, "score": round(d.score, 4), "box": [round(v, 1) for v in d.box], "kept": kept,
            "why": why}


class MlSanitizer:
    backend = "ml"

    def __init__(self, cfg: Phase1, models: ModelStore, vram: VramManager):
        """Every model is verified now; each is loaded on first use, so a phase-II step that only needs
        `silhouette` loads SAM alone."""
        self.cfg, self.vram = cfg, vram
        self._paths = {n: models.require(n) for n in ("grounding-dino", "sam", "lama")}

    @cached_property
    def detector(self) -> GroundingDinoDetector:
        return GroundingDinoDetector(self._paths["grounding-dino"], self.vram)

    @cached_property
    def segmenter(self) -> SamSegmenter:
        return SamSegmenter(self._paths["sam"], self.vram)

    @cached_property
    def inpainter(self) -> LamaInpainter:
        return LamaInpainter(self._paths["lama"], self.vram)

    def thresholds(self) -> list[tuple[float, float]]:
        d, r = self.cfg.detector, self.cfg.retry
        tries = [(d.box_threshold, d.text_threshold)] + [(v.box_threshold, v.text_threshold) for v in r.variations]
        return tries[: r.max_attempts]

    def sanitize(self, rgb: np.ndarray, alpha: np.ndarray | None = None) -> SanitizeResult:
        t0 = time.perf_counter()
        failures = []
        with self.vram.image():
            for attempt, (box_t, text_t) in enumerate(self.thresholds(), 1):
                found = self._attempt(rgb, alpha, box_t, text_t)
                if isinstance(found, str):
                    failures.append(f"attempt {attempt} (box {box_t}, text {text_t}): {found}")
                    continue
                vehicle, erased, detections = found
                clean = self.inpainter.inpaint(rgb, erased, resize_limit=self.cfg.inpaint.resize_limit)
                break
            else:
                raise QualityError("; ".join(failures), phase=PHASE,
                                   fix="check the photo shows one vehicle, or lower phase1.detector thresholds "
                                       "or set phase1.backend: lite")
        metrics = {"seconds": round(time.perf_counter() - t0, 3), "attempts": attempt,
                   "box_threshold": box_t, "text_threshold": text_t,
                   "vehicle_share": round(float(vehicle.mean()), 4),
                   "erased_share": round(float(erased.sum() / max(vehicle.sum(), 1)), 4),
                   "parts_erased": sum(d["kept"] for d in detections[1:]),     # [0] is the vehicle
                   "parts_dropped": sum(not d["kept"] for d in detections[1:]),
                   "peak_vram_gb": round(self.vram.last_image_peak_gb, 3), "failed_attempts": failures}
        return SanitizeResult(clean=clean, vehicle_mask=vehicle, erased_mask=erased, backend=self.backend,
                              detections=detections, metrics=metrics)

    def _attempt(self, rgb, alpha, box_t: float, text_t: float):
        """(vehicle mask, erased mask, detection records), or the reason this attempt found nothing usable."""
        det, q = self.cfg.detector, self.cfg.quality
        records: list[dict] = []
        if alpha is not None and (alpha > 127).any():
            vehicle = alpha > 127          # the source's own transparency is the silhouette
            vbox = mask_box(vehicle)
            records.append({"label": "vehicle", "score": 1.0, "box": list(vbox), "kept": True, "why": "alpha"})
        else:
            found = self.detector.detect(rgb, [det.vehicle_prompt], box_threshold=box_t, text_threshold=text_t)
            if not found:
                return "no vehicle detected"
            vbox = found[0].box
            records.append(_record(found[0], True) | {"label": "vehicle"})
            vehicle = self.segmenter.masks(rgb, np.array([vbox]), multimask=self.cfg.segmenter.multimask)[0]
        share = float(vehicle.mean())
        if not q.min_vehicle_area <= share <= q.max_vehicle_area:
            return f"vehicle mask covers {share:.1%} of the frame, outside [{q.min_vehicle_area}, {q.max_vehicle_area}]"
        vbox_area = max((vbox[2] - vbox[0]) * (vbox[3] - vbox[1]), 1.0)
        parts, boxes = [], []
        for d in self.detector.detect(rgb, det.part_prompts, box_threshold=box_t, text_threshold=text_t):
            if len(parts) == det.max_parts:      # detections come best score first
                records.append(_record(d, False, f"beyond max_parts {det.max_parts}"))
            elif not _intersects(d.box, vbox):
                records.append(_record(d, False, "outside the vehicle"))
            elif d.area > det.max_part_share * vbox_area:
                records.append(_record(d, False, f"box is {d.area / vbox_area:.0%} of the vehicle box "
                                                 f"(> max_part_share {det.max_part_share})"))
            else:
                parts.append(d)
                boxes.append(d.box)
        masks = self.segmenter.masks(rgb, np.array(boxes), multimask=self.cfg.segmenter.multimask)
        # a part never reaches beyond its own box (SAM can leak into the body); then grow to cover its rim
        masks = [_dilate(_clip_to_box(m, d.box), self.cfg.segmenter.mask_dilation_px) for m, d in zip(masks, parts)]
        # smallest parts first, so the largest are the ones dropped when the erased total would exceed the bound
        budget = q.max_erased_share * vehicle.sum()
        erased = np.zeros(vehicle.shape, dtype=bool)
        for i in sorted(range(len(parts)), key=lambda i: masks[i].sum()):
            grown = erased | masks[i]
            if grown.sum() > budget:
                records.append(_record(parts[i], False, f"erased area would exceed max_erased_share "
                                                        f"{q.max_erased_share}"))
            else:
                erased = grown
                records.append(_record(parts[i], True))
        return vehicle, erased, records

    def release(self) -> None:
        """End of the step: every model leaves the device."""
        self.vram.close()

    def silhouette(self, rgb: np.ndarray, hint: np.ndarray) -> np.ndarray:
        """SAM's mask of the vehicle in `rgb`, prompted with the bounding box of `hint` (resized to `rgb`)."""
        h, w = rgb.shape[:2]
        if hint.shape != (h, w):
            hint = cv2.resize(hint.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
        box = mask_box(hint)
        if box is None:
            return np.zeros((h, w), dtype=bool)
        return self.segmenter.masks(rgb, np.array([box]), multimask=self.cfg.segmenter.multimask)[0]
