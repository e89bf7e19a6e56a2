"""Monocular depth as a ControlNet hint: 0-255, near = bright, 3 channels, at the generation size."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..vram import VramManager

NAME = "depth"


class DepthEstimator:
    """Any transformers depth model (Depth Anything V2, DPT, ZoeDepth) from a local folder."""

    def __init__(self, folder: Path, vram: VramManager):
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.vram = vram
        self.processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
        model = AutoModelForDepthEstimation.from_pretrained(folder, local_files_only=True, dtype=vram.dtype).eval()
        cfg = model.config
        # relative models (Depth Anything, DPT/MiDaS) predict inverse depth: near is already large.
        # Metric ones (ZoeDepth) predict distance and are inverted, the polarity depth ControlNets expect.
        self.metric = cfg.model_type == "zoedepth" or getattr(cfg, "depth_estimation_type", "relative") == "metric"
        vram.register(NAME, model)

    def hint(self, rgb: np.ndarray, size_wh: tuple[int, int]) -> np.ndarray:
        model = self.vram.acquire(NAME)
        inputs = self.processor(images=Image.fromarray(rgb), return_tensors="pt")
        pixels = inputs["pixel_values"].to(self.vram.device, self.vram.dtype)
        with torch.inference_mode():
            pred = self.vram.run(lambda: model(pixel_values=pixels).predicted_depth, owner=NAME)
        w, h = size_wh
        depth = F.interpolate(pred.float()[:, None], size=(h, w), mode="bicubic", align_corners=False)[0, 0]
        lo, hi = depth.min(), depth.max()
        norm = (depth - lo) / (hi - lo) if hi > lo else torch.zeros_like(depth)
        if self.metric:
            norm = 1 - norm
        gray = (norm.clamp(0, 1) * 255).round().byte().cpu().numpy()
        return np.repeat(gray[:, :, None], 3, axis=2)
