"""One line per image: where each batch ended, for the demo and the CLI."""
from __future__ import annotations

import json

from v2v_resources.phases import REGISTRY
from v2v_resources.storage import Home


def image_status(home: Home, key: str) -> dict:
    """The last phase done for a key, or the phase that failed and why."""
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


def summarize(home: Home, keys: list[str], out) -> int:
    ok = 0
    for key in keys:
        st = image_status(home, key)
        if "vector_svg" in st:
            ok += 1
            v, r, i, c = (st[a]["metadata"] for a in ("vector_svg", "palette_raster", "illustration", "clean_plate"))
            backends = "/".join(st[a]["backend"] for a in ("clean_plate", "illustration", "palette_raster"))
            print(f"{key}: OK  backends {backends}  vehicle {c['vehicle_area']:.0%}  "
                  f"IoU {i['silhouette_iou']:.3f}  colours {r['colors_used']}  "
                  f"paths {int(v.get('paths', 0))}  agreement {float(v.get('agreement', 0)):.2%}  "
                  f"{v['svg_bytes'] / 1024:.0f} KiB  {st['vector_svg']['files']['svg']}", file=out)
        elif st["failed"]:
            f = st["failed"]
            print(f"{key}: FAILED in {f['asset']}: {f['reason']}" + (f" (fix: {f['fix']})" if f.get("fix") else ""),
                  file=out)
        else:
            print(f"{key}: incomplete (done: {', '.join(st['done']) or 'nothing'})", file=out)
    return ok
