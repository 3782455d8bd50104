"""`vqdsr models` / `vqdsr.models()`."""
import subprocess

import vsvqdsr as vqdsr
from conftest import VENV_BIN


def test_models_lists_installed_with_default_marked():
    models = vqdsr.models()
    assert {"animesr-v1", "animesr-v2"} <= set(models)
    res = subprocess.run([str(VENV_BIN / "vqdsr"), "models"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    sections: dict[str, list[str]] = {}
    for line in res.stdout.splitlines():
        if line and not line[0] in "* ":
            sections[line.split()[0]] = []
        elif line.startswith("*"):
            sections[list(sections)[-1]].append(line)
    # every kind is listed, each with exactly one default
    assert set(sections) == {"vsr", "degrader", "sisr"}, res.stdout
    assert all(len(m) == 1 for m in sections.values()), sections
    assert "degrade-lite" in sections["degrader"][0]
    assert "realesr-animevideov3" in sections["sisr"][0]
    marked = sections["vsr"]
    # the default is the benchmark-ranked model when one is installed (vqdsr-ft), else animesr-v1
    from vsvqdsr.weights.registry import default_model

    assert len(marked) == 1 and default_model() in marked[0]
    ranked = "vqdsr-ft" in models and "benchmark_rank" in models["vqdsr-ft"].card
    assert default_model() == ("vqdsr-ft" if ranked else "animesr-v1")
    assert "Apache-2.0" in res.stdout
