"""Phase III: ×4 upscale, exact CIEDE2000 palette mapping, speckle removal."""
