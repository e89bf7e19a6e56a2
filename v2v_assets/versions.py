"""Code versions: engine version + the parameters (and palette) a phase uses, so that changing either marks
that phase's partitions stale in the UI."""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache

from v2v_resources.settings import Settings, load_settings

# Bump when an engine's algorithm changes in a way that changes its output.
ENGINE_VERSIONS = {"photo": "1", "clean_plate": "1", "illustration": "1", "palette_raster": "1", "vector_svg": "1"}
SECTIONS = {
    "photo": ("intake",),
    "clean_plate": ("hardware", "phase1"),
    "illustration": ("hardware", "phase2"),
    "palette_raster": ("hardware", "palette", "phase3"),
    "vector_svg": ("palette", "phase4", "output"),
}


@lru_cache(maxsize=1)
def definition_settings() -> Settings:
    """The settings the definitions are built with ($V2V_CONFIG or configs/default.yaml); runs may override."""
    return load_settings()


def code_version(asset: str) -> str:
    payload = {"engine": ENGINE_VERSIONS[asset], **definition_settings().fingerprint(*SECTIONS[asset])}
    digest = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]
    return f"{ENGINE_VERSIONS[asset]}-{digest}"
