"""``molgraph <command>``: train (a Hydra application) and predict."""

from __future__ import annotations

import sys

from molgraph.cli import predict, train

COMMANDS = {"train": train.main, "predict": predict.main}
USAGE = """usage: molgraph <command> [arguments]

commands:
  train     train a model (Hydra: `molgraph train data=bbbp encoder.hidden_dim=256 seed=1`)
  predict   predict properties for a CSV/SMI/SDF file with a trained model

`molgraph <command> --help` shows each command's options."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
