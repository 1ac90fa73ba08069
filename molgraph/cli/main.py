"""``molgraph <command>``: train (a Hydra application) and predict."""

from __future__ import annotations

import sys

import molgraph
from molgraph.cli import bundle, embed, embed_esm, merge, predict, report, score_variants, train

COMMANDS = {
    "train": train.main,
    "predict": predict.main,
    "merge": merge.main,
    "report": report.main,
    "export": bundle.export,
    "embed": embed.main,
    "info": bundle.info,
    "embed-esm": embed_esm.main,
    "score-variants": score_variants.main,
}
USAGE = """usage: molgraph <command> [arguments]

commands:
  train     train a model (Hydra: `molgraph train data=bbbp encoder.hidden_dim=256 seed=1`)
  predict   predict properties (molecules: CSV/SMI/SDF; proteins: PDB/mmCIF files, folders,
            variants CSVs) with a run directory or a bundle
  merge     assemble the output of a sharded `predict --shard i/n` run once all shards end
  export    write an encoder bundle from a run (`molgraph export RUN_DIR --output BUNDLE`)
            or from a DGL-LifeSci pre-trained GIN (`--dgllife gin_supervised_masking.pth`)
  embed     write embeddings with a bundle (`--output x.npy`, `.parquet` or `.csv`)
  info      show a bundle's recipe (`molgraph info BUNDLE`)
  embed-esm precompute a protein dataset's ESM embeddings into the cache (Hydra overrides
            as for train: `molgraph embed-esm experiment=gb1_gvp esm.path=esm2.pt`)
  score-variants  zero-shot ESM scores (masked / wild-type marginals) of a variants CSV
            (`molgraph score-variants --esm esm1v.pt --input dms.csv --structure wt.pdb --output s.csv`)
  report    one table and plot for a sweep (`molgraph report outputs/multirun/DATE/TIME`)

`molgraph <command> --help` shows each command's options; `molgraph --version` the version."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--version"]:
        print(f"molgraph {molgraph.__version__}")
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        print(USAGE)
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    return COMMANDS[argv[0]](argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main())
