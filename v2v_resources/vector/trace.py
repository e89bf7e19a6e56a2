"""vtracer under a time limit: the trace runs in a child process that is killed when the limit passes."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import BadInputError, EngineError
from ..settings import VTracer

PHASE = "IV vector"
WORKER = Path(__file__).with_name("trace_worker.py")     # run by path: it imports vtracer only


def vtracer_kwargs(cfg: VTracer) -> dict:
    """Every binding parameter from the settings (the binding calls the CLI's segment_length
    `length_threshold`; there is no `segment_length` keyword)."""
    return cfg.model_dump()


def png_bytes(rgba: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG", compress_level=0)   # a pipe: encode fast, size is free
    return buf.getvalue()


def trace(rgba: np.ndarray, cfg: VTracer, time_limit_s: float) -> str:
    """SVG text of `rgba` (H×W×4 uint8) traced by vtracer; EngineError when it fails or passes the limit."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise BadInputError(f"vtracer input must be H×W×4 uint8, got {rgba.dtype} {rgba.shape}", phase=PHASE,
                            fix="pass phase III's RGBA raster")
    cmd = [sys.executable, str(WORKER), json.dumps(vtracer_kwargs(cfg))]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(png_bytes(rgba), timeout=time_limit_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise EngineError(f"vtracer passed the time limit of {time_limit_s:g} s on a "
                          f"{rgba.shape[1]}x{rgba.shape[0]} raster and was stopped", phase=PHASE,
                          fix="raise phase4.time_limit_s, lower phase4.trace_long_side or raise "
                              "phase4.vtracer.filter_speckle") from None
    if proc.returncode != 0 or not out.strip():
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise EngineError(f"vtracer failed (exit {proc.returncode}): {tail[0]}", phase=PHASE,
                          fix="check phase4.vtracer parameters against the binding's ranges")
    return out.decode()
