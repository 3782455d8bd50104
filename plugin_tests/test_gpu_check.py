"""The GPU check kit without a GPU: an offline kit, ``gpu_check.sh --dry-run`` into a fresh venv that
sees only torch and numpy (like a bare GPU machine), and the summary writer on recorded results."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from vsvqdsr.gpucheck import kit, summary
from vsvqdsr.gpucheck.plan import STEPS

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"


def _closure(names: list[str]) -> list[metadata.Distribution]:
    """``names`` and everything they require (markers evaluated here), as installed distributions."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    env = dict(default_environment(), extra="")
    seen: dict[str, metadata.Distribution] = {}
    todo = list(names)
    while todo:
        name = kit.normalize(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = dist
        for req in dist.requires or []:
            q = Requirement(req)
            if q.marker is None or q.marker.evaluate(env):
                todo.append(q.name)
    return list(seen.values())


def bare_gpu_site(dest: Path) -> Path:
    """A folder that shows only torch (with what it requires) and numpy, by symlinks into this venv:
    what a bare GPU machine's Python has besides its standard library."""
    dest.mkdir(parents=True, exist_ok=True)
    for dist in _closure(["torch", "numpy"]):
        for top in {f.parts[0] for f in dist.files or [] if f.parts[0] != ".."}:
            src = Path(dist.locate_file(top))
            if src.exists() and not (dest / top).exists() and not top.endswith(".pth"):
                (dest / top).symlink_to(src)
    return dest


@pytest.fixture(scope="module")
def offline_kit(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("kit")
    wheels = kit.from_installed(d)
    kit.write_manifest(d, wheels, "test: repacked from the installed distributions")
    return d


def test_repacked_wheel_is_installable_shape(offline_kit):
    whl = next((offline_kit / "wheels").glob("vapoursynth-81-*.whl"))
    with zipfile.ZipFile(whl) as zf:
        names = set(zf.namelist())
        record = zf.read("vapoursynth-81.dist-info/RECORD").decode()
    assert "vapoursynth-81.dist-info/METADATA" in names and "vapoursynth-81.dist-info/entry_points.txt" in names
    assert not any("__pycache__" in n or n.endswith("INSTALLER") for n in names)
    assert not any(n.startswith("vapoursynth-81.data/scripts/vspipe") for n in names)  # pip regenerates it
    assert {line.split(",")[0] for line in record.splitlines()} == names
    assert whl.name == "vapoursynth-81-cp312-abi3-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"


def test_kit_verify_catches_a_changed_or_missing_wheel(offline_kit, tmp_path):
    man = kit.verify(offline_kit)
    assert {kit.normalize(w["dist"]) for w in man["wheels"]} == {kit.normalize(d) for d in kit.KIT_DISTS}
    bad = tmp_path / "kit"
    (bad / "wheels").mkdir(parents=True)
    for w in man["wheels"][:3]:
        (bad / "wheels" / w["file"]).symlink_to(offline_kit / "wheels" / w["file"])
    (bad / "manifest.json").write_text(json.dumps(dict(man, wheels=man["wheels"][:3])))
    with pytest.raises(kit.KitError, match="no wheel for"):
        kit.verify(bad)
    (bad / "wheels" / man["wheels"][0]["file"]).unlink()
    (bad / "wheels" / man["wheels"][0]["file"]).write_bytes(b"not a wheel")
    with pytest.raises(kit.KitError, match="differs from the manifest"):
        kit.verify(bad)
    with pytest.raises(kit.KitError, match="manifest.json is missing"):
        kit.verify(tmp_path / "nothing")


def test_dry_run_installs_the_kit_offline_into_a_fresh_venv(offline_kit, tmp_path):
    site = bare_gpu_site(tmp_path / "bare-site")
    out = tmp_path / "out"
    base_python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PIP_"))}
    env.update(VSVQDSR_PYTHON=str(base_python), PYTHONPATH=str(site), PATH="/usr/bin:/bin")
    res = subprocess.run([str(ROOT / "scripts" / "gpu_check.sh"), str(out), "--dry-run", "--kit", str(offline_kit),
                          "--work", str(tmp_path / "work")], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    result = json.loads((out / "summary.json").read_text())
    steps = {s["name"]: s for s in result["steps"]}
    assert [s["name"] for s in result["steps"]] == [s.name for s in STEPS]
    for s in STEPS:
        if s.gpu:
            assert steps[s.name]["status"] == "skip" and steps[s.name]["reason"] == "dry run: needs a CUDA GPU"
        else:
            assert steps[s.name]["status"] == "pass", steps[s.name]
    imports = steps["imports"]
    assert all(c["ok"] for c in imports["checks"]) and len(imports["checks"]) >= 10
    assert imports["figures"]["vapoursynth"] == "R81" and imports["figures"]["cuda_available"] is False
    assert steps["cpu-smoke"]["figures"]["steps"] == 2
    assert result["mode"] == "dry-run" and result["counts"] == {"pass": 4, "fail": 0, "skip": len(STEPS) - 4}
    # the venv imports the kit's VapourSynth and this tree's vsvqdsr, and nothing else from this venv
    venv_py = tmp_path / "work" / "venv" / "bin" / "python"
    probe = subprocess.run([str(venv_py), "-c", "import vapoursynth, vsvqdsr, torch, importlib.util as u; "
                            "print(vapoursynth.__file__, vsvqdsr.__file__, u.find_spec('onnxruntime'))"],
                           env=env, capture_output=True, text=True, timeout=120)
    vs_file, pkg_file, ort = probe.stdout.split()
    assert vs_file.startswith(str(tmp_path / "work" / "venv")) and pkg_file == str(ROOT / "vsvqdsr" / "__init__.py")
    assert ort == "None"
    # the summary is printed, and lists the skipped GPU steps
    assert res.stdout == (out / "summary.md").read_text()
    assert re.search(r"\| parity \| skip \| 0\.00 \| .*: dry run: needs a CUDA GPU \|", res.stdout)


def test_summary_markdown_of_recorded_results_is_exact():
    recorded = json.loads((DATA / "gpu_check_recorded.json").read_text())
    assert summary.markdown(recorded) == (DATA / "gpu_check_recorded.md").read_text()


def test_summary_write_counts_and_odd_values(tmp_path):
    result = {"mode": "gpu", "seconds": 1.0, "steps": [
        {"name": "a", "title": "t|x", "status": "pass", "figures": {"x": float("nan"), "y": [1.0, None]}},
        {"name": "b", "status": "weird", "reason": "r\nr", "checks": [{"name": "c", "ok": False}]},
        {"name": "c", "status": "skip", "reason": "why"}]}
    md = summary.write(result, tmp_path)
    assert json.loads((tmp_path / "summary.json").read_text())["counts"] == {"pass": 1, "fail": 1, "skip": 1}
    assert "| a | pass | - | t/x |" in md and "| b | weird | - | r r |" in md and "- b: c" in md
    assert "x: nan; y: 1.00, -" in md
    assert summary.fmt(1234.5) == "1234" and summary.fmt(52.345) == "52.34" and summary.fmt(0.012345) == "0.0123"
