"""`v2v host` for the benchmarks on random-weight models: the real host, with each generated image flattened
after its SDXL call.

    python bench/host_serve.py --device cuda:0 --port 8765 --config ... --models ... --manifest ...

Random weights paint noise. Downstream of phase II that is far costlier than any real illustration (palette
mapping then despeckles millions of specks at 4096², vtracer traces them), so the benchmark numbers would
measure noise. Here every image a batch returns is replaced by a 32×32-block version of itself (nearest
neighbour down and up): the SDXL work is done in full, and phases III and IV get flat regions, as they do
from a real flat illustration. Everything else is `v2v host` unchanged.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BLOCKS = 32


def flatten(img: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    small = Image.fromarray(img).resize((BLOCKS, max(1, BLOCKS * h // w)), Image.Resampling.NEAREST)
    return np.asarray(small.resize((w, h), Image.Resampling.NEAREST))


def flatten_generated() -> None:
    """Patch the ml steerer, in this process, so that every generated image comes back flattened."""
    from v2v_resources.steer.ml import MlSteerer

    if getattr(MlSteerer.generate_batch, "flattened", False):
        return
    generate_batch = MlSteerer.generate_batch

    def flattened(self, jobs, size_wh, weights):
        return [flatten(img) for img in generate_batch(self, jobs, size_wh, weights)]

    flattened.flattened = True
    MlSteerer.generate_batch = flattened


def main(argv: list[str] | None = None) -> int:
    from v2v_assets import cli_host

    flatten_generated()
    return cli_host.main(argv)


if __name__ == "__main__":
    sys.exit(main())
