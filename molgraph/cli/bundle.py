"""``molgraph export`` (a run or a DGL-LifeSci GIN → a bundle) and ``molgraph info``."""

from __future__ import annotations

import argparse
import sys

from molgraph.bundles import describe, export_run, open_bundle, register, registry_dir
from molgraph.bundles.dgllife import bundle_from_dgllife
from molgraph.errors import MolgraphError
from molgraph.uncertainty import export_ensemble, is_ensemble


def export(argv: list[str]) -> int:
    """``molgraph export RUN_DIR --output BUNDLE`` or ``--dgllife FILE.pth``."""
    parser = argparse.ArgumentParser(
        prog="molgraph export", description="Write an encoder bundle (weights + recipe)."
    )
    parser.add_argument("run_dir", nargs="?", help="a training run directory")
    parser.add_argument(
        "--dgllife", metavar="FILE.pth", help="a DGL-LifeSci gin_supervised_* checkpoint instead"
    )
    parser.add_argument("--output", required=True, help="bundle directory to write")
    parser.add_argument("--encoder-only", action="store_true", help="leave out the task head")
    parser.add_argument("--register", metavar="NAME", help="also add it to the registry")
    args = parser.parse_args(argv)
    if (args.run_dir is None) == (args.dgllife is None):
        parser.error("give a run directory or --dgllife FILE.pth")

    try:
        if args.dgllife:
            path = bundle_from_dgllife(args.dgllife, args.output)
        elif is_ensemble(args.run_dir) and not args.encoder_only:  # members + calibration
            path = export_ensemble(args.run_dir, args.output)
        else:
            path = export_run(args.run_dir, args.output, with_head=not args.encoder_only)
        print(f"wrote bundle {path}")
        if args.register:
            register(path, args.register, overwrite=True)
            print(f"registered as {args.register!r} in {registry_dir()}")
    except MolgraphError as exc:
        print(f"molgraph export: {exc}", file=sys.stderr)
        return 1
    return 0


def info(argv: list[str]) -> int:
    """``molgraph info BUNDLE``: the recipe and weights of a bundle (checksum verified)."""
    parser = argparse.ArgumentParser(prog="molgraph info", description=info.__doc__)
    parser.add_argument("bundle", help="bundle directory or registered name")
    args = parser.parse_args(argv)

    try:
        print(describe(open_bundle(args.bundle)))
    except MolgraphError as exc:
        print(f"molgraph info: {exc}", file=sys.stderr)
        return 1
    return 0
