"""SVG validation with defusedxml (no entities, no DTDs): safe content and palette-only colours.

Safe means nothing that runs or fetches: no <script>, <foreignObject> or <style> (CSS can @import and
carry colours past the palette audit), no on* event attributes, and links only to #fragments of the same
document. Valid additionally means an <svg> root with a viewBox and a size, and every colour a palette one.
"""
from __future__ import annotations

import re
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ..palette import Palette

SVG_NS = "http://www.w3.org/2000/svg"
FORBIDDEN_TAGS = {"script", "foreignobject", "style", "iframe", "embed", "object", "handler", "listener"}
LINK_ATTRS = {"href"}                          # also xlink:href: attributes compare by local name
COLOR_ATTRS = {"fill", "stroke", "stop-color", "flood-color", "lighting-color", "color"}
_HEX6 = re.compile(r"^#[0-9A-Fa-f]{6}$")


def local(name: str) -> str:
    """Local part of an ElementTree name: '{ns}tag' → 'tag'."""
    return name.rsplit("}", 1)[-1]


def parse_svg(svg: str) -> tuple[Element | None, str | None]:
    """(root, None) or (None, why it does not parse) — entities and DTDs are refused."""
    try:
        return SafeET.fromstring(svg), None
    except DefusedXmlException as e:
        return None, f"forbidden XML construct: {type(e).__name__}"
    except Exception as e:  # ParseError and encoding errors alike
        return None, f"not well-formed XML: {e}"


def _style_pairs(style: str) -> list[tuple[str, str]]:
    pairs = (decl.split(":", 1) for decl in style.split(";") if ":" in decl)
    return [(k.strip().lower(), v.strip()) for k, v in pairs]


def safety_problems(root: Element) -> list[str]:
    problems = []
    for el in root.iter():
        tag = local(el.tag) if isinstance(el.tag, str) else ""
        if tag.lower() in FORBIDDEN_TAGS:
            problems.append(f"<{tag}> element is not allowed")
        for name, value in el.attrib.items():
            attr = local(name)
            if attr.lower().startswith("on"):
                problems.append(f"event attribute {attr}= on <{tag}> is not allowed")
            elif attr in LINK_ATTRS and not value.strip().startswith("#"):
                problems.append(f"external link {attr}={value[:60]!r} on <{tag}>; only #fragments are allowed")
            elif attr == "style" and re.search(r"url\s*\(|@import|expression\s*\(", value, re.I):
                problems.append(f"style on <{tag}> loads a resource: {value[:60]!r}")
    return problems


def _color_problem(value: str, palette: Palette) -> str | None:
    v = value.strip()
    if v.lower() == "none" or (_HEX6.match(v) and palette.contains(v)):
        return None
    return v


def palette_problems(root: Element, palette: Palette) -> list[str]:
    bad: dict[str, int] = {}
    for el in root.iter():
        pairs = [(local(k), v) for k, v in el.attrib.items()]
        pairs += _style_pairs(el.attrib.get("style", ""))
        for attr, value in pairs:
            if attr in COLOR_ATTRS and (v := _color_problem(value, palette)):
                bad[f"{attr}={v}"] = bad.get(f"{attr}={v}", 0) + 1
    return [f"colour {k} is not in palette {palette.name!r} ({n}×)" for k, n in sorted(bad.items())]


def _positive_numbers(text: str | None, count: int) -> bool:
    try:
        nums = [float(x) for x in re.split(r"[\s,]+", (text or "").strip().removesuffix("px")) if x]
    except ValueError:
        return False
    return len(nums) == count and all(n > 0 for n in nums[-2:])


def structure_problems(root: Element) -> list[str]:
    problems = []
    if root.tag != f"{{{SVG_NS}}}svg":
        problems.append(f"root element is {root.tag!r}, not an SVG-namespace <svg>")
    if not _positive_numbers(root.get("viewBox"), 4):
        problems.append(f"viewBox is missing or invalid ({root.get('viewBox')!r})")
    for dim in ("width", "height"):
        if not _positive_numbers(root.get(dim), 1):
            problems.append(f"{dim} is missing or invalid ({root.get(dim)!r})")
    return problems


def validate_svg(svg: str, palette: Palette) -> list[str]:
    """Problems of an SVG as v2v output (empty list: valid)."""
    root, why = parse_svg(svg)
    if root is None:
        return [why]
    return structure_problems(root) + safety_problems(root) + palette_problems(root, palette)
