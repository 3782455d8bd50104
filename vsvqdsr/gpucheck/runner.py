"""Run the GPU check: install the kit into a fresh venv, run every step in its own process.

Runs in the machine's own Python (standard library only). A step that fails, crashes or runs out
of time is recorded and the run goes on; steps that need CUDA are skipped with the reason when
torch sees no device or with ``dry_run``; a step is not started once the time budget is spent.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..log import get_logger
from . import kit as kitmod
from . import summary
from .plan import STEPS, Step

__all__ = ["run"]


log = get_logger(__name__)


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _tail(text: str, n: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


class _Run:
    def __init__(self, root: Path, kit: Path, outdir: Path, work: Path, dry_run: bool, budget_s: float,
                 rehearse: bool = False) -> None:
        self.root, self.kit, self.outdir, self.work = root, kit, outdir, work
        self.dry_run, self.budget_s, self.rehearse = dry_run, budget_s, rehearse
        self.t0 = time.monotonic()
        self.venv = work / "venv"
        self.logs = outdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.results: list[dict] = []
        self.manifest: dict = {}

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)

    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV") and not k.startswith("PIP_")}
        env.update({"PIP_CONFIG_FILE": os.devnull,  # no index, links or constraints from pip's configuration
                    "PATH": f"{self.venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                    "XDG_CONFIG_HOME": str(self.venv / "xdg-config"),
                    "VSVQDSR_MODEL_DIR": str(self.work / "models"),
                    "VSVQDSR_ENGINE_DIR": str(self.work / "engines"),
                    "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1"})
        if self.rehearse:
            env["VSVQDSR_GPUCHECK_REHEARSAL"] = "1"
        return env

    def sh(self, args: list, log, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run ``args``; on timeout kill its whole process group (vspipe children included)."""
        log.write(f"$ {' '.join(str(a) for a in args)}\n")
        log.flush()
        proc = subprocess.Popen([str(a) for a in args], cwd=cwd or self.root, env=self.env(), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = proc.communicate(timeout=max(1.0, timeout))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
            log.write(out + err + f"\n[killed after {timeout:.0f} s]\n")
            raise
        log.write(out + err)
        log.flush()
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    # -- launcher steps ---------------------------------------------------------------------------
    def step_kit(self, step: Step) -> dict:
        man = kitmod.verify(self.kit)
        self.manifest = man
        mib = sum(w["bytes"] for w in man["wheels"]) / (1 << 20)
        return {"figures": {"wheels": len(man["wheels"]), "wheels_mib": round(mib, 1),
                            "source": man.get("source"), "created_utc": man.get("created_utc")},
                "checks": [{"name": "every wheel present with the manifest's size and SHA-256", "ok": True}]}

    def step_venv(self, step: Step) -> dict:
        if not self.manifest:
            raise _Skip("the kit step failed")
        deadline = time.monotonic() + min(step.timeout, self.left())
        figures: dict = {}
        with open(self.logs / "venv.log", "w") as log:
            shutil.rmtree(self.venv, ignore_errors=True)
            res = self.sh([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", self.venv],
                          log, deadline - time.monotonic())
            if res.returncode:
                raise _Fail(f"python -m venv failed: {_tail(res.stderr, 3)}")
            # What this interpreter sees beyond its standard library (site-packages, PYTHONPATH, the
            # site of a venv or conda env it runs in) is what "the system's torch" means: the new
            # venv sees it too, after its own packages.
            res = self.sh([self.python(), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          log, 30)
            purelib = Path(res.stdout.strip())
            extra = [p for p in site.getsitepackages() + [site.getusersitepackages()] if Path(p).is_dir()]
            extra += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                      if p and Path(p).is_dir() and Path(p).resolve() != self.root.resolve()]
            (purelib / "_vsvqdsr_gpucheck_base.pth").write_text("".join(f"{p}\n" for p in dict.fromkeys(extra)))
            wheels = [self.kit / "wheels" / w["file"] for w in self.manifest["wheels"]]
            pip_whl = next((w for w in wheels if w.name.startswith("pip-")), None)
            if pip_whl is None:
                raise _Fail("the kit has no pip wheel")
            pip = [self.python(), f"{pip_whl}/pip", "install", "--no-index", "--no-deps", "--no-compile",
                   "--ignore-installed", "--disable-pip-version-check", "--no-warn-script-location"]
            t = time.monotonic()
            res = self.sh([*pip, *wheels], log, deadline - time.monotonic())
            if res.returncode:
                raise _Fail(f"installing the kit failed: {_tail(res.stderr, 4)}")
            figures["kit_install_s"] = round(time.monotonic() - t, 1)
            t = time.monotonic()
            res = self.sh([self.python(), "-m", "pip", "install", "--no-index", "--no-deps", "--no-compile",
                           "--no-build-isolation", "--disable-pip-version-check", "--no-warn-script-location",
                           "-e", self.root], log, deadline - time.monotonic())
            if res.returncode:
                raise _Fail(f"installing the project (pip install -e, offline) failed: {_tail(res.stderr, 4)}")
            figures["project_install_s"] = round(time.monotonic() - t, 1)
            (self.venv / "xdg-config").mkdir(exist_ok=True)
            res = self.sh([self.venv / "bin" / "vapoursynth", "config"], log, 60)
            if res.returncode:
                raise _Fail(f"'vapoursynth config' failed: {_tail(res.stderr, 3)}")
        figures["wheels_installed"] = len(wheels)
        figures["base_paths"] = len(extra)
        return {"figures": figures, "checks": [
            {"name": "venv created, kit installed with --no-index, project installed -e offline", "ok": True}]}

    # -- steps in the venv -------------------------------------------------------------------------
    def run_in_venv(self, step: Step) -> dict:
        res_path = self.work / "results" / f"{step.name}.json"
        res_path.parent.mkdir(parents=True, exist_ok=True)
        res_path.unlink(missing_ok=True)
        args = [self.python(), "-m", "vsvqdsr.gpucheck.steps", step.name, "--root", self.root, "--out", self.outdir,
                "--work", self.work, "--kit", self.kit, "--result", res_path]
        if self.dry_run:
            args.append("--dry-run")
        timeout = min(step.timeout, self.left())
        with open(self.logs / f"{step.name}.log", "w") as log:
            try:
                res = self.sh(args, log, timeout)
            except subprocess.TimeoutExpired:
                raise _Fail(f"timed out after {timeout:.0f} s (log: logs/{step.name}.log)") from None
        if res_path.is_file():
            out = json.loads(res_path.read_text())
            if res.returncode and out.get("status") == "pass":
                out["status"] = "fail"
                out["reason"] = f"exit status {res.returncode} after reporting pass"
            return out
        raise _Fail(f"the step's process ended with status {res.returncode} and no result: "
                    f"{_tail(res.stderr, 3) or 'no output'} (log: logs/{step.name}.log)")

    def execute(self) -> dict:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        cuda: bool | None = None
        venv_ok = False
        for step in STEPS:
            t = time.monotonic()
            entry = {"name": step.name, "title": step.title, "status": "fail", "reason": "", "checks": [],
                     "figures": {}, "tables": []}
            try:
                if not step.launcher and not venv_ok:
                    raise _Skip("the venv step failed")
                if step.gpu and self.dry_run:
                    raise _Skip("dry run: needs a CUDA GPU")
                if step.gpu and cuda is False and not self.rehearse:
                    raise _Skip("torch sees no CUDA device")
                if step.gpu and cuda is None and not self.rehearse:
                    raise _Skip("the imports step did not report on CUDA")
                if self.left() < 20:
                    raise _Skip(f"time budget ({self.budget_s:.0f} s) spent")
                log.info(f"gpu-check: {step.name}: {step.title}")
                if step.name == "kit":
                    out = self.step_kit(step)
                elif step.name == "venv":
                    out = self.step_venv(step)
                else:
                    out = self.run_in_venv(step)
                entry.update(out)
                if step.launcher:
                    entry["status"] = "pass" if all(c["ok"] for c in entry["checks"]) else "fail"
            except _Skip as e:
                entry.update(status="skip", reason=str(e))
            except (_Fail, kitmod.KitError) as e:
                entry.update(status="fail", reason=str(e))
            except Exception as e:  # the run goes on whatever one step does
                entry.update(status="fail", reason=f"{type(e).__name__}: {e}")
            entry["seconds"] = round(time.monotonic() - t, 1)
            if step.name == "venv":
                venv_ok = entry["status"] == "pass"
            if step.name == "imports" and entry["status"] != "skip":
                cuda = entry["figures"].get("cuda_available")
                cuda = bool(cuda) if cuda is not None else None
            log.info(f"gpu-check: {step.name}: {entry['status']}"
                     + (f" ({entry['reason']})" if entry["reason"] else ""))
            self.results.append(entry)
        machine = {"python": platform.python_version(), "cpu": _cpu_name(), "cores": os.cpu_count()}
        imports = next((s for s in self.results if s["name"] == "imports"), {})
        for k in ("torch", "cuda_device", "vapoursynth"):
            if k in imports.get("figures", {}):
                machine[k] = imports["figures"][k]
        mode = "dry-run" if self.dry_run else "REHEARSAL (GPU steps on the CPU)" if self.rehearse else "gpu"
        return {"format": 1, "mode": mode, "started_utc": started,
                "seconds": round(time.monotonic() - self.t0, 1), "machine": machine,
                "root": str(self.root), "kit": str(self.kit), "steps": self.results}


class _Skip(Exception):
    pass


class _Fail(Exception):
    pass


def run(root: Path, kit: Path, outdir: Path, dry_run: bool = False, budget_s: float = 420.0,
        work: Path | None = None, keep: bool = False, rehearse: bool = False) -> tuple[dict, str]:
    """Run every step; write ``summary.json``/``summary.md`` and step logs to ``outdir``.

    ``rehearse`` runs the GPU steps on the CPU backend over a small crop of the sample (to try them
    without a GPU; the figures mean nothing).

    ``work`` holds the venv and the scratch files (default: a new folder in the temporary
    directory, removed afterwards unless ``keep``). Returns the result and its Markdown."""
    outdir = outdir.resolve()
    own_work = work is None
    work = Path(tempfile.mkdtemp(prefix="vsvqdsr-gpu-check-")) if own_work else work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        r = _Run(root.resolve(), kit.resolve(), outdir, work, dry_run, budget_s, rehearse)
        result = r.execute()
        md = summary.write(result, outdir)
    finally:
        if own_work and not keep:
            shutil.rmtree(work, ignore_errors=True)
    return result, md
