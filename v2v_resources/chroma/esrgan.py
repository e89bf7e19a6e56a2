"""×4 Real-ESRGAN via spandrel, tiled with overlap so a 1024² input never needs the ~9 GB of one pass."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import EngineError
from ..vram import VramManager
from .upscale import FACTOR, check_rgb

NAME = "esrgan"
PHASE = "III chroma"


class EsrganUpscaler:
    name = "esrgan"

    def __init__(self, path: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32,
                 tile: int = 512, tile_pad: int = 10, *, vram: VramManager | None = None):
        """`path` must already be verified (`ModelStore.require`). fp16/bf16 only on the GPU."""
        from spandrel import ImageModelDescriptor, ModelLoader, canonicalize_state_dict

        try:
            # plain tensors only (the release wraps them as {"params_ema": ...}); spandrel maps the key names
            sd = torch.load(path, map_location="cpu", weights_only=True)
            desc = ModelLoader(device="cpu").load_from_state_dict(canonicalize_state_dict(sd))
        except Exception as e:    # torch and spandrel raise several types for files they cannot read
            raise EngineError(f"not a loadable upscaler: {e}", file=str(path), phase=PHASE,
                              fix="point the manifest's esrgan entry at a Real-ESRGAN x4 .pth") from e
        if not isinstance(desc, ImageModelDescriptor) or desc.scale != FACTOR:
            raise EngineError(f"{desc.architecture.name} ×{getattr(desc, 'scale', '?')} is not a ×4 image model",
                              file=str(path), phase=PHASE, fix="use a ×4 Real-ESRGAN checkpoint")
        self.dtype = dtype if device.startswith("cuda") and desc.supports_half else torch.float32
        self.model = desc.model.eval().to(self.dtype)
        self.device, self.tile, self.tile_pad, self.vram = device, tile, tile_pad, vram
        if vram is not None:
            vram.register(NAME, self.model)
        else:
            self.model.to(device)

    def release(self) -> None:
        if self.vram is not None:
            self.vram.close()

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 N×C×H×W on the CPU: quantised on the device, so 4096² comes back as 50 MB, not 200 MB of floats."""
        with torch.inference_mode():
            y = self.model(x.to(self.device, self.dtype))
            return y.float().clamp_(0, 1).mul_(255).round_().to(torch.uint8).cpu()

    def upscale(self, rgb: np.ndarray) -> np.ndarray:
        h, w = check_rgb(rgb).shape[:2]
        if self.vram is not None:
            self.model = self.vram.acquire(NAME)
        x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
        run = (lambda: self._tiled(x)) if self.tile and max(h, w) > self.tile else (lambda: self._forward(x))
        out = self.vram.run(run, owner=NAME) if self.vram is not None else run()
        return out[0].permute(1, 2, 0).contiguous().numpy()

    def _tiled(self, x: torch.Tensor) -> torch.Tensor:
        """Each tile is run with `tile_pad` pixels of context on every side; only its core is kept."""
        _, c, h, w = x.shape
        t, p = self.tile, self.tile_pad
        out = torch.empty((1, c, h * FACTOR, w * FACTOR), dtype=torch.uint8)
        for y0 in range(0, h, t):
            for x0 in range(0, w, t):
                y1, x1 = min(y0 + t, h), min(x0 + t, w)
                py0, px0, py1, px1 = max(y0 - p, 0), max(x0 - p, 0), min(y1 + p, h), min(x1 + p, w)
                up = self._forward(x[:, :, py0:py1, px0:px1])
                oy, ox = (y0 - py0) * FACTOR, (x0 - px0) * FACTOR
                out[:, :, y0 * FACTOR:y1 * FACTOR, x0 * FACTOR:x1 * FACTOR] = \
                    up[:, :, oy:oy + (y1 - y0) * FACTOR, ox:ox + (x1 - x0) * FACTOR]
        return out
