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
    # the default is the benchmark-ranked model when one is installed (vqdsr-ft), else animesr-v1
    from vsvqdsr.weights.registry import default_model

    assert len(marked) == 1 and default_model() in marked[0]
    ranked = "vqdsr-ft" in models and "benchmark_rank" in models["vqdsr-ft"].card
    assert default_model() == ("vqdsr-ft" if ranked else "animesr-v1")
    assert "Apache-2.0" in res.stdout
