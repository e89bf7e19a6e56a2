"""Pictures of a training run: the sample grid and the loss curve (Pillow only; no plotting library)."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..imaging import save_png


def sample_grid(rows: list[list[np.ndarray]], path: Path, gap: int = 4) -> Path:
    """Rows of equal-size RGB images on a white sheet, written atomically as PNG."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            sheet[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = img
    return save_png(path, sheet)


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing mean over `window` steps (the raw per-step loss of a diffusion model is very noisy)."""
    c = np.cumsum(np.insert(np.asarray(values, float), 0, 0.0))
    return [float((c[i + 1] - c[max(0, i + 1 - window)]) / (i + 1 - max(0, i + 1 - window)))
            for i in range(len(values))]


def loss_plot_png(losses: list[float], size: tuple[int, int] = (480, 200)) -> bytes:
    """The per-step loss (grey) and its trailing mean (blue) as a small PNG."""
    w, h, pad = *size, 24
    im = Image.new("RGB", size, "white")
    d = ImageDraw.Draw(im)
    d.rectangle([pad, 4, w - 4, h - pad], outline=(200, 200, 200))
    if losses:
        lo, hi = min(losses), max(losses)
        span = (hi - lo) or 1.0

        def xy(i: int, v: float) -> tuple[float, float]:
            x = pad + (w - 4 - pad) * (i / max(1, len(losses) - 1))
            return x, (h - pad) - (h - pad - 4) * (v - lo) / span

        for series, colour in ((losses, (170, 170, 170)), (smooth(losses, max(1, len(losses) // 20)),
                                                            (30, 90, 200))):
            pts = [xy(i, v) for i, v in enumerate(series)]
            d.line(pts if len(pts) > 1 else pts * 2, fill=colour, width=1 if colour[0] == 170 else 2)
        d.text((pad + 2, 6), f"{hi:.4g}", fill="black")
        d.text((pad + 2, h - pad - 12), f"{lo:.4g}", fill="black")
        d.text((pad, h - pad + 6), f"step 1 … {len(losses)}", fill="black")
    buf = io.BytesIO()
    im.save(buf, format="PNG", optimize=True)
    return buf.getvalue()
