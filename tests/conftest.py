import os
import warnings
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
warnings.filterwarnings("ignore", category=DeprecationWarning)


@pytest.fixture
def home(tmp_path, monkeypatch):
    from v2v_resources.storage import Home

    h = Home(tmp_path / "v2v").ensure()
    monkeypatch.setenv("V2V_HOME", str(h.root))
    return h


@pytest.fixture
def instance(tmp_path):
    import dagster as dg

    d = tmp_path / "dagster_home"
    d.mkdir()
    with dg.instance_for_test(temp_dir=str(d)) as inst:
        yield inst


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """Four synthetic photos (with ground truth), drawn once per session."""
    from v2v_resources.samples import generate_samples

    d = tmp_path_factory.mktemp("samples")
    generate_samples(d, 4, seed=0)
    return d
