"""``python -m vsvqdsr.gpucheck kit|run``: build the kit, or run the GPU check (scripts/gpu_kit.sh,
scripts/gpu_check.sh). Parses and calls; the summary goes to stdout, progress to stderr, errors are
one line with exit status 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _kit(args: argparse.Namespace) -> int:
    from . import kit

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.from_installed:
        wheels = kit.from_installed(out, compress=True)
        source = f"repacked from the distributions installed in {sys.prefix} (no network)"
    else:
        wheels = kit.download(out)
        source = "pip download --no-deps, CPython 3.12 manylinux x86_64"
    man = kit.write_manifest(out, wheels, source)
    for w in man["wheels"]:
        print(f"  {w['file']:<78} {w['bytes'] / (1 << 20):6.2f} MiB")
    lines, ok = kit.size_report(out, ROOT)
    print("\n".join(lines))
    return 0 if ok else 1


def _run(args: argparse.Namespace) -> int:
    from . import summary
    from .runner import run

    result, md = run(ROOT, Path(args.kit), Path(args.outdir), dry_run=args.dry_run, budget_s=args.budget,
                     work=Path(args.work) if args.work else None, keep=args.keep, rehearse=args.rehearse)
    print(md, end="", flush=True)
    return 0 if summary.counts(result)["fail"] == 0 else 1


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vsvqdsr.gpucheck", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("kit", help="gather the wheels a bare GPU machine lacks into a kit folder")
    k.add_argument("--out", default=str(ROOT / ".gpu-kit"), help="kit folder (default .gpu-kit)")
    k.add_argument("--from-installed", action="store_true",
                   help="repack this interpreter's installed distributions instead of downloading")
    k.set_defaults(func=_kit)
    r = sub.add_parser("run", help="install the kit into a fresh venv and run every step")
    r.add_argument("outdir", nargs="?", default="out/gpu-check", help="where summary.json/.md and logs go")
    r.add_argument("--kit", default=str(ROOT / ".gpu-kit"), help="kit folder (default .gpu-kit)")
    r.add_argument("--dry-run", action="store_true", help="run only the steps that need no GPU")
    r.add_argument("--rehearse", action="store_true",
                   help="run the GPU steps on the CPU backend over a small crop (tries them without a GPU)")
    r.add_argument("--budget", type=float, default=420.0, help="seconds; no step starts after (default 420)")
    r.add_argument("--work", default=None, help="scratch folder for the venv and renders (default: temporary)")
    r.add_argument("--keep", action="store_true", help="keep the temporary scratch folder")
    r.set_defaults(func=_run)
    args = p.parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:  # noqa: BLE001 - one line for the user, the details are in the step logs
        from .kit import KitError

        if isinstance(e, (KitError, OSError)):
            print(f"gpu-check {args.cmd}: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
