"""Phase IV: vtracer SVG, strokes, safe validation, PNG preview, fidelity."""
