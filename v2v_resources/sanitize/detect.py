"""Open-vocabulary boxes with GroundingDINO (transformers), thresholds that really apply."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..vram import VramManager

NAME = "grounding-dino"


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: tuple[float, float, float, float]     # x1, y1, x2, y2 in pixels of the image given

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = self.box
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def prompt_text(phrases: list[str]) -> str:
    """GroundingDINO expects lower-case phrases each ending in '.'."""
    return " ".join(p.strip().rstrip(".").lower() + "." for p in phrases if p.strip())


class GroundingDinoDetector:
    def __init__(self, folder: Path, vram: VramManager):
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        self.vram = vram
        self.processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
        # fp32 always: autocast fp16 is slower on its deformable attention (performance-anchors §2.1)
        model = GroundingDinoForObjectDetection.from_pretrained(folder, local_files_only=True,
                                                                dtype=torch.float32).eval()
        vram.register(NAME, model)

    def detect(self, rgb: np.ndarray, phrases: list[str], *, box_threshold: float,
               text_threshold: float) -> list[Detection]:
        model = self.vram.acquire(NAME)
        h, w = rgb.shape[:2]
        inputs = self.processor(images=Image.fromarray(rgb), text=prompt_text(phrases),
                                return_tensors="pt").to(self.vram.device)
        with torch.inference_mode():
            out = self.vram.run(lambda: model(**inputs), owner=NAME)
        res = self.processor.post_process_grounded_object_detection(
            out, inputs["input_ids"], threshold=box_threshold, text_threshold=text_threshold,
            target_sizes=[(h, w)])[0]
        dets = []
        for score, box, label in zip(res["scores"].tolist(), res["boxes"].tolist(), res["text_labels"]):
            x1, y1, x2, y2 = (float(np.clip(v, 0, lim)) for v, lim in zip(box, (w, h, w, h)))
            if x2 > x1 and y2 > y1:
                dets.append(Detection(label.strip(), float(score), (x1, y1, x2, y2)))
        return sorted(dets, key=lambda d: -d.score)
