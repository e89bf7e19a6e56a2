"""A host on CPU with tiny models, in a thread of the test process or as a child process, and its data."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import numpy as np

# the run settings every host test uses: tiny sizes, ml everywhere, quality bounds open (random weights)
ML = {
    "hardware": {"device": "cpu"},
    "intake": {"working_long_side": 128},
    "phase1": {"backend": "ml", "quality": {"min_vehicle_area": 0.0, "max_vehicle_area": 1.0,
                                            "max_erased_share": 1.0, "min_silhouette_iou": 0.0}},
    "phase2": {"backend": "ml", "generation_long_side": 64, "sdxl": {"steps": 2},
               "iou_retry": {"allow_skip_on_failure": True}},
    "phase3": {"backend": "ml", "output_long_side": 256, "preview_long_side": 128, "esrgan_tile": 32,
               "esrgan_tile_pad": 4},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photos(home, n: int, start: int = 0) -> list[str]:
    """n synthetic cut-outs through the production photo phase; returns their keys. (Random SAM weights give
    arbitrary masks; the alpha gives phase I the real one, so every later phase has a vehicle.)"""
    from v2v_resources import imaging
    from v2v_resources.phases import REGISTRY
    from v2v_resources.samples import draw_sample
    from v2v_resources.settings import load_settings

    s = load_settings(overrides=ML)
    keys = []
    for i in range(start, start + n):
        key = f"car{i:02d}-{i:06x}"
        rgb, mask, _ = draw_sample(100 + i, (128, 96))
        imaging.save_png(home.path("photo", key, "source.png"), np.dstack([rgb, mask.astype(np.uint8) * 255]))
        REGISTRY["photo"].run(home, key, s, None)
        keys.append(key)
    return keys


@contextlib.contextmanager
def thread_host(engines, settings, token: str | None = None):
    """A real uvicorn server on a free port, in a thread, over already-loaded engines."""
    import uvicorn

    from v2v_resources.host.server import create_app
    from v2v_resources.host.service import HostService

    service = HostService(settings, engines=engines).start(background=False)
    assert service.ready, service.detail
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(service, token), host="127.0.0.1", port=port,
                                           log_level="warning"))
    t = threading.Thread(target=server.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}", service
    finally:
        server.should_exit = True
        t.join(10)
        service.close()


def arrays(home, asset: str, key: str, names: list[str]) -> list[np.ndarray]:
    from v2v_resources import imaging

    return [imaging.load_png(home.path(asset, key, n)) for n in names]


def no_temp_files(root: Path) -> bool:
    from v2v_resources.storage import TMP_PREFIX

    return not list(Path(root).rglob(f"{TMP_PREFIX}*"))


def same_but_rounding(a: np.ndarray, b: np.ndarray) -> bool:
    """Two generations of the same image, one batched with others: float32 kernels for another batch size
    sum in another order, which the random tiny models amplify to a few levels (seen: at most 4, mean 0.6 on
    one image of three, < 0.01 on the others); a different image differs by tens of levels on average."""
    d = np.abs(a.astype(int) - b.astype(int))
    return d.max() <= 8 and d.mean() < 1.0
