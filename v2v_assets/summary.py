"""One line per image: where it ended, for the demo and the CLI."""
from __future__ import annotations

import json

from v2v_resources.phases import REGISTRY
from v2v_resources.storage import Home


def image_status(home: Home, key: str) -> dict:
    """The phases done for a key, and the phase that failed and why."""
    status = {"key": key, "done": [], "failed": None}
    for asset in REGISTRY.names:
        meta, fail = home.path(asset, key, "meta.json"), home.path(asset, key, "failure.json")
        if meta.is_file():
            status["done"].append(asset)
            status[asset] = json.loads(meta.read_text())
        elif fail.is_file():
            status["failed"] = json.loads(fail.read_text())
            break
        else:
            break
    return status


def image_line(st: dict) -> str:
    key = st["key"]
    if "vector_svg" in st:
        v, r, i, c = (st[a]["metadata"] for a in ("vector_svg", "palette_raster", "illustration", "clean_plate"))
        backends = "/".join(st[a]["backend"] for a in ("clean_plate", "illustration", "palette_raster"))
        return (f"{key}: OK  {backends}  vehicle {c['vehicle_area']:.0%}  IoU {i['silhouette_iou']:.3f}  "
                f"{r['colors_used']} colours  {int(v.get('paths', 0))} paths  "
                f"agreement {float(v.get('agreement', 0)):.1%}  {st['vector_svg']['files']['svg']}")
    if st["failed"]:
        f = st["failed"]
        return f"{key}: FAILED in {f['asset']}: {f['reason']}" + (f" (fix: {f['fix']})" if f.get("fix") else "")
    return f"{key}: incomplete (done: {', '.join(st['done']) or 'nothing'})"
