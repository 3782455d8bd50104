"""The kit: wheels a bare GPU machine lacks, with a manifest, gathered where a registry is reachable.

Layout of a kit folder (``.gpu-kit/`` by default, ignored by git)::

    manifest.json        what is in it: per wheel the distribution, version, file, size, SHA-256
    wheels/*.whl         --no-deps wheels for CPython 3.12, manylinux x86-64

The GPU machine is assumed to have a CUDA ``torch`` with its own requirements, and ``numpy``
(:data:`ASSUMED`); everything else the check imports is in :data:`KIT_DISTS`. The check uses only
weights that ship in the package (``vqdsr-ft``, ``degrade-lite``), so the kit carries no models.

Two ways to fill a kit: :func:`download` (``pip download --no-deps`` for the GPU machine's Python and
platform, the versions installed here) and :func:`wheel_from_installed` (repack an installed
distribution into a wheel, offline: what the test of the dry run uses).
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import platform
import re
import subprocess
import sys
import time
import zipfile
from importlib import metadata
from pathlib import Path

__all__ = ["ASSUMED", "KIT_DISTS", "MANIFEST", "LIMIT_MIB", "BUDGET_MIB", "KitError", "download",
           "wheel_from_installed", "from_installed", "write_manifest", "verify", "tree_bytes", "dir_bytes",
           "size_report", "normalize"]

#: Distributions the GPU check needs that a bare GPU machine (Python 3.12 + CUDA torch) lacks:
#: the package's runtime imports, VapourSynth's source and scene-change plugins, ONNX (only the
#: TensorRT step uses it), pytest for the ``gpu``-marked tests, and setuptools/pip to install the
#: project itself offline (pip is run from its wheel, so no ``ensurepip`` is needed).
KIT_DISTS: tuple[str, ...] = (
    "vapoursynth", "vapoursynth-bestsource", "vapoursynth-scenechange", "safetensors",
    "filelock", "tqdm", "onnx", "protobuf", "ml_dtypes", "pytest", "pluggy", "iniconfig", "packaging",
    "pygments", "pytest-timeout", "setuptools", "pip",
)

#: Distributions the GPU machine is assumed to have: torch, what torch requires, and numpy.
ASSUMED: tuple[str, ...] = ("torch", "numpy", "typing-extensions", "sympy", "mpmath", "networkx", "jinja2",
                            "markupsafe", "fsspec", "triton")

MANIFEST = "manifest.json"
#: What may travel to a GPU machine in one call, and the share of it the kit plus tree should use.
LIMIT_MIB = 64
BUDGET_MIB = 56

#: ``pip download`` platform tags: pip matches manylinux_2_N exactly, so every N a wheel may carry.
PLATFORMS: tuple[str, ...] = tuple(f"manylinux_2_{n}_x86_64" for n in (17, 24, 27, 28, 31, 34)) + (
    "manylinux2014_x86_64",)


class KitError(Exception):
    """A kit that cannot be built or does not match its manifest."""


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _wheel_dist(filename: str) -> tuple[str, str]:
    parts = filename[:-4].split("-")
    if len(parts) < 5:
        raise KitError(f"{filename}: not a wheel file name (name-version-python-abi-platform.whl)")
    return normalize(parts[0]), parts[1]


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def download(kit: Path, dists: tuple[str, ...] = KIT_DISTS, python_version: str = "3.12") -> list[Path]:
    """``pip download --no-deps`` every distribution of ``dists`` for CPython ``python_version`` on
    manylinux x86-64 into ``kit/wheels``: the version installed in this interpreter where there is
    one (the versions the test suite runs with), else the newest. Returns the wheel paths."""
    wheels = kit / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    reqs = []
    for name in dists:
        v = installed_version(name)
        reqs.append(f"{name}=={v}" if v else name)
    cmd = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
           "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
           *(a for p in PLATFORMS for a in ("--platform", p)), "-d", str(wheels), *reqs]
    res = subprocess.run(cmd, stdout=sys.stderr, stderr=subprocess.PIPE, text=True)
    if res.returncode != 0:
        tail = "\n".join(res.stderr.strip().splitlines()[-6:])
        raise KitError(f"pip download failed (exit {res.returncode}):\n{tail}")
    picked = _pick(wheels, dists)
    for p in wheels.glob("*.whl"):  # wheels of earlier kits would only add to what travels
        if p not in picked:
            p.unlink()
    return picked


def _pick(wheels: Path, dists: tuple[str, ...]) -> list[Path]:
    """One wheel per wanted distribution (the newest file when a folder holds several)."""
    by_name: dict[str, Path] = {}
    for p in sorted(wheels.glob("*.whl"), key=lambda p: p.stat().st_mtime):
        by_name[_wheel_dist(p.name)[0]] = p
    missing = [d for d in dists if normalize(d) not in by_name]
    if missing:
        raise KitError(f"no wheel for {', '.join(missing)} in {wheels}")
    return [by_name[normalize(d)] for d in dists]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _compressed_tag(tags: list[str]) -> str:
    py, abi, plat = ([], [], [])
    for t in tags:
        a, b, c = t.split("-", 2)
        for lst, v in ((py, a), (abi, b), (plat, c)):
            if v not in lst:
                lst.append(v)
    return "-".join(".".join(x) for x in (py, abi, plat))


def wheel_from_installed(name: str, out_dir: Path, compress: bool = False) -> Path:
    """Repack the installed distribution ``name`` (of this interpreter) into a wheel in ``out_dir``.

    The files come from its RECORD; byte-compiled files and the installer's own files are left out,
    console scripts are regenerated by pip from ``entry_points.txt``, other files outside
    site-packages go to the wheel's ``.data/data`` folder. ``compress=False`` stores the files
    (fast; the wheel is larger than a registry's)."""
    try:
        dist = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise KitError(f"{name} is not installed in {sys.prefix}") from None
    files = dist.files
    if not files:
        raise KitError(f"{name}: no RECORD, cannot repack")
    info_dir = next(p.parts[0] for p in files if p.parts[0].endswith(".dist-info"))
    wheel_meta = dist.read_text("WHEEL") or ""
    tags = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Tag:")]
    if not tags:
        raise KitError(f"{name}: its WHEEL file names no tag")
    scripts = {ep.name for ep in dist.entry_points if ep.group in ("console_scripts", "gui_scripts")}
    stem = f"{re.sub(r'[-_.]+', '_', dist.metadata['Name']).lower()}-{dist.version}"
    skip_info = {"INSTALLER", "REQUESTED", "RECORD", "direct_url.json"}
    entries: list[tuple[str, Path]] = []
    for rel in files:
        src = Path(dist.locate_file(rel))
        if "__pycache__" in rel.parts or rel.suffix == ".pyc":
            continue
        if rel.parts[0] == info_dir and rel.name in skip_info:
            continue
        if rel.parts[0] == "..":
            outside = Path(os.path.relpath(os.path.normpath(src), sys.prefix))
            if outside.parts[0] == "bin":
                if outside.name in scripts:
                    continue
                arc = f"{stem}.data/scripts/{outside.name}"
            else:
                arc = f"{stem}.data/data/{outside.as_posix()}"
        else:
            arc = rel.as_posix()
        if not src.is_file():
            raise KitError(f"{name}: {src} is listed in RECORD but missing")
        entries.append((arc, src))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{stem}-{_compressed_tag(tags)}.whl"
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    mode = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    tmp = path.with_suffix(".part")
    with zipfile.ZipFile(tmp, "w", mode) as zf:
        for arc, src in entries:
            data = src.read_bytes()
            zi = zipfile.ZipInfo(arc, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (src.stat().st_mode & 0o777 | 0o100000) << 16
            zi.compress_type = mode
            zf.writestr(zi, data)
            writer.writerow([arc, _record_hash(data), len(data)])
        writer.writerow([f"{info_dir}/RECORD", "", ""])
        zf.writestr(f"{info_dir}/RECORD", record.getvalue())
    tmp.replace(path)
    return path


def from_installed(kit: Path, dists: tuple[str, ...] = KIT_DISTS, compress: bool = False) -> list[Path]:
    """Fill ``kit/wheels`` by repacking this interpreter's installed distributions (no network).
    Only where this interpreter is what the GPU machine runs: CPython 3.12 on x86-64 Linux."""
    here = (sys.implementation.name, sys.version_info[:2], sys.platform, platform.machine())
    if here != ("cpython", (3, 12), "linux", "x86_64"):
        raise KitError(f"repacking needs CPython 3.12 on x86-64 Linux (the GPU machine's), this is {here}")
    return [wheel_from_installed(d, kit / "wheels", compress) for d in dists]


def write_manifest(kit: Path, wheels: list[Path], source: str) -> dict:
    """Write ``kit/manifest.json`` for ``wheels`` (paths inside ``kit/wheels``) and return it."""
    items = []
    for p in wheels:
        name, version = _wheel_dist(p.name)
        items.append({"dist": name, "version": version, "file": p.name, "bytes": p.stat().st_size,
                      "sha256": _sha256(p)})
    man = {"format": 1, "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "source": source,
           "python": "cp312", "platform": "manylinux x86_64", "assumed_on_gpu_machine": list(ASSUMED),
           "wheels": items, "models": [],
           "models_note": "the check uses only weights shipped in the package (vqdsr-ft, degrade-lite)"}
    tmp = kit / (MANIFEST + ".part")
    tmp.write_text(json.dumps(man, indent=1) + "\n")
    tmp.replace(kit / MANIFEST)
    return man


def verify(kit: Path) -> dict:
    """Check ``kit`` against its manifest: every wheel present with its size and SHA-256, every
    distribution of :data:`KIT_DISTS` there. Returns the manifest; raises :class:`KitError`."""
    mpath = kit / MANIFEST
    if not mpath.is_file():
        raise KitError(f"{mpath} is missing: build the kit with scripts/gpu_kit.sh")
    try:
        man = json.loads(mpath.read_text())
        items = man["wheels"]
    except (ValueError, KeyError, TypeError) as e:
        raise KitError(f"{mpath}: unreadable manifest ({e})") from None
    problems = []
    for it in items:
        p = kit / "wheels" / it["file"]
        if not p.is_file():
            problems.append(f"{it['file']} missing")
        elif p.stat().st_size != it["bytes"] or _sha256(p) != it["sha256"]:
            problems.append(f"{it['file']} differs from the manifest (size or SHA-256)")
    have = {normalize(it["dist"]) for it in items}
    missing = [d for d in KIT_DISTS if normalize(d) not in have]
    if missing:
        problems.append(f"no wheel for {', '.join(missing)}")
    if problems:
        raise KitError(f"{kit}: " + "; ".join(problems))
    return man


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def tree_bytes(root: Path) -> int | None:
    """Bytes of what travels with a working tree: tracked files plus untracked files git does not
    ignore (``git ls-files -co --exclude-standard``). None when ``root`` is not a git checkout."""
    try:
        res = subprocess.run(["git", "-C", str(root), "ls-files", "-co", "--exclude-standard", "-z"],
                             capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if res.returncode != 0:
        return None
    total = 0
    for name in res.stdout.decode("utf-8", "surrogateescape").split("\0"):
        p = root / name
        if name and p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def size_report(kit: Path, root: Path) -> tuple[list[str], bool]:
    """Lines stating the kit's size, the working tree's and their sum against :data:`BUDGET_MIB`
    (of the :data:`LIMIT_MIB` that may travel), and whether the sum is within the budget."""
    mib = 1 << 20
    kb = dir_bytes(kit)
    tb = tree_bytes(root)
    lines = [f"kit {kit}: {kb / mib:.1f} MiB"]
    if tb is None:
        lines.append(f"working tree {root}: not a git checkout, size unknown")
        return lines, kb <= BUDGET_MIB * mib
    total = kb + tb
    ok = total <= BUDGET_MIB * mib
    lines.append(f"working tree (tracked + untracked, not ignored): {tb / mib:.1f} MiB")
    lines.append(f"together: {total / mib:.1f} MiB of the {LIMIT_MIB} MiB that may travel "
                 f"(budget {BUDGET_MIB} MiB): {'OK' if ok else 'OVER BUDGET'}")
    return lines, ok
