"""vtracer's SVG made into v2v's: SVG namespace kept as the default (no `ns0:`), viewBox and size set,
every fill snapped to the exact palette colour it stands for. Nothing else is dropped."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.etree.ElementTree import Element

import numpy as np

from ..chroma.mapping import brute_force_indices
from ..color import hex_to_rgb
from ..errors import EngineError
from ..palette import Palette
from .safety import SVG_NS, local, parse_svg

ET.register_namespace("", SVG_NS)
PHASE = "IV vector"


def parse(svg: str) -> Element:
    root, why = parse_svg(svg)
    if root is None:
        raise EngineError(f"vtracer returned an unreadable SVG: {why}", phase=PHASE,
                          fix="report this; the vtracer version may have changed its output")
    return root


def snap_fills(root: Element, palette: Palette) -> int:
    """Set every fill to the palette colour of least ΔE2000 (vtracer averages clusters, so it may write
    #A52929 for #A52A2A). Returns how many fills changed."""
    paths = [el for el in root.iter() if "fill" in el.attrib and el.get("fill", "").startswith("#")]
    fills = sorted({el.get("fill").upper() for el in paths})
    if not fills:
        return 0
    rgb = hex_to_rgb(fills)
    nearest = brute_force_indices(rgb[None], palette)[0]
    exact = {f: palette.colors[i] for f, i in zip(fills, nearest)}
    changed = 0
    for el in paths:
        new = exact[el.get("fill").upper()]
        changed += new != el.get("fill")
        el.set("fill", new)
    return changed


def set_frame(root: Element, viewbox_wh: tuple[int, int], size_wh: tuple[int, int]) -> None:
    root.set("viewBox", f"0 0 {viewbox_wh[0]} {viewbox_wh[1]}")
    root.set("width", str(size_wh[0]))
    root.set("height", str(size_wh[1]))


def count_paths(root: Element) -> int:
    return sum(1 for el in root.iter() if isinstance(el.tag, str) and local(el.tag) == "path")


def serialize(root: Element) -> str:
    return ET.tostring(root, encoding="unicode", xml_declaration=True)
