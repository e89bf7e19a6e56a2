"""Fill masked pixels with LaMa at a bounded working size.

The weights are the safetensors file `v2v models pull` converted from the released TorchScript archive
(big-lama.pt) without running it; spandrel builds its own eager copy of the architecture from them. No
TorchScript is read here: a .pt is refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import EngineError
from ..vram import VramManager

NAME = "lama"
MODULO = 8          # LaMa's encoder downsamples x8; other sizes are padded
FIX = "run `v2v models pull lama` (it converts big-lama.pt to lama/big-lama.safetensors once)"


class LamaInpainter:
    def __init__(self, path: Path, vram: VramManager):
        from safetensors.torch import load_file
        from spandrel import MaskedImageModelDescriptor, ModelLoader

        self.vram = vram
        if Path(path).suffix != ".safetensors":
            raise EngineError("LaMa is loaded from safetensors only (a TorchScript archive is never loaded at "
                              "run time)", file=str(path), phase="phase1", fix=FIX)
        try:
            desc = ModelLoader(device="cpu").load_from_state_dict(load_file(str(path)))
        except Exception as e:    # safetensors and spandrel raise several types for files they cannot read
            raise EngineError(f"not a loadable LaMa ({type(e).__name__}: {e})", file=str(path), phase="phase1",
                              fix=FIX) from e
        if not isinstance(desc, MaskedImageModelDescriptor):
            raise EngineError(f"{desc.architecture.name} is not an inpainting model", file=str(path),
                              phase="phase1", fix=FIX)
        # fp32: LaMa's Fourier convolutions need power-of-two sizes for half-precision FFT
        vram.register(NAME, desc.model.eval())

    def inpaint(self, rgb: np.ndarray, mask: np.ndarray, *, resize_limit: int) -> np.ndarray:
        """`rgb` with the `mask` pixels replaced by LaMa's fill; every other pixel is kept exactly."""
        if not mask.any():
            return rgb.copy()
        model = self.vram.acquire(NAME)
        h, w = mask.shape
        scale = min(1.0, resize_limit / max(h, w))
        sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
        dev = self.vram.device
        img = torch.from_numpy(rgb).to(dev).permute(2, 0, 1)[None].float() / 255
        m = torch.from_numpy(mask.astype(np.float32)).to(dev)[None, None]
        if scale < 1:
            img = F.interpolate(img, size=(sh, sw), mode="area")
            m = (F.interpolate(m, size=(sh, sw), mode="area") > 0).float()   # never shrink the hole
        ph, pw = -sh % MODULO, -sw % MODULO
        img = F.pad(img, (0, pw, 0, ph), mode="reflect" if min(sh, sw) > max(ph, pw) else "replicate")
        m = F.pad(m, (0, pw, 0, ph))
        with torch.inference_mode():
            out = self.vram.run(lambda: model(img, m), owner=NAME)[:, :, :sh, :sw]
        if scale < 1:
            out = F.interpolate(out, size=(h, w), mode="bicubic", align_corners=False)
        fill = (out[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()
        result = rgb.copy()
        result[mask] = fill[mask]
        return result
