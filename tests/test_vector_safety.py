"""SVG validation and rendering: unsafe or off-palette SVGs are reported, the valid one renders exactly."""
import numpy as np
import pytest

from v2v_resources.errors import BadInputError
from v2v_resources.palette import Palette
from v2v_resources.vector.render import render_svg
from v2v_resources.vector.safety import validate_svg

PALETTE = Palette.from_name("default15")
HEAD = '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
GOOD = (HEAD + 'viewBox="0 0 10 10" width="20" height="20">'
        '<rect x="0" y="0" width="5" height="10" fill="#FF0000"/></svg>')


def body(inner: str, attrs: str = 'viewBox="0 0 10 10" width="20" height="20"') -> str:
    return f"{HEAD}{attrs}>{inner}</svg>"


def test_valid_svg_has_no_problems_and_renders_exactly():
    assert validate_svg(GOOD, PALETTE) == []
    assert validate_svg(body('<defs><path id="p" d="M0 0 L1 1"/></defs><use href="#p" fill="none" '
                             'stroke="#000000"/>'), PALETTE) == []
    img = render_svg(GOOD, 20)
    assert img.shape == (20, 20, 4)
    assert img[10, 2].tolist() == [255, 0, 0, 255] and img[10, 17, 3] == 0


@pytest.mark.parametrize("inner, words", [
    ('<script>alert(1)</script>', "<script>"),
    ('<rect width="1" height="1" fill="#FF0000" onclick="x()"/>', "onclick"),
    ('<foreignObject><div xmlns="http://www.w3.org/1999/xhtml">x</div></foreignObject>', "foreignObject"),
    ('<image href="http://evil.example/x.png" width="1" height="1"/>', "external link"),
    ('<image xlink:href="file:///etc/passwd" width="1" height="1"/>', "external link"),
    ('<image href="data:image/png;base64,AAAA" width="1" height="1"/>', "external link"),
    ('<rect width="1" height="1" fill="#123456"/>', "#123456"),
    ('<rect width="1" height="1" style="fill: #ABCDEF"/>', "#ABCDEF"),
    ('<rect width="1" height="1" fill="url(#g)"/>', "url(#g)"),
    ('<style>@import url(http://evil.example/a.css);</style>', "<style>"),
])
def test_unsafe_or_off_palette_content_is_reported(inner, words):
    problems = validate_svg(body(inner), PALETTE)
    assert any(words in p for p in problems), problems


def test_onload_on_root_and_missing_frame():
    problems = validate_svg(body("", 'onload="x()"'), PALETTE)
    assert any("onload" in p for p in problems)
    assert any("viewBox" in p for p in problems) and any("width" in p for p in problems)


def test_entities_and_garbage_are_refused():
    bomb = ('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
            + body("&b;"))
    assert any("forbidden XML" in p for p in validate_svg(bomb, PALETTE))
    assert any("not well-formed" in p for p in validate_svg("<svg", PALETTE))
    assert any("root element" in p for p in validate_svg("<html/>", PALETTE))


def test_render_refuses_unsafe_svg():
    with pytest.raises(BadInputError, match="unsafe"):
        render_svg(body('<script>alert(1)</script>'), 20)
    assert np.asarray(render_svg(GOOD, 40)).shape == (40, 40, 4)
