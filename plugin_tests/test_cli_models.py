"""`vqdsr models` / `vqdsr.models()`."""
import subprocess

import vsvqdsr as vqdsr
from conftest import VENV_BIN


def test_models_lists_installed_with_default_marked():
    models = vqdsr.models()
    assert {"animesr-v1", "animesr-v2"} <= set(models)
    res = subprocess.run([str(VENV_BIN / "vqdsr"), "models"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    marked = [line for line in res.stdout.splitlines() if line.startswith("*")]
    assert len(marked) == 1 and "animesr-v1" in marked[0]
    assert "Apache-2.0" in res.stdout
