#!/usr/bin/env bash
# Train a molgraph K=5 ensemble on each shared split file (member0 is the single-model
# run of the same seed); chemprop's architecture (D-MPNN, hidden 300, depth 3), one thread.
# MVE=1: members with mean-variance heads (uncertainty=mve; regression sets only), in runs/molgraph-mve.
#   EPOCHS=30 bash experiments/uncertainty/run_molgraph.sh "esol bbbp lipophilicity"
#   MVE=1 EPOCHS=30 bash experiments/uncertainty/run_molgraph.sh "esol lipophilicity"
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-/work/main/.venv/bin/python}
EPOCHS=${EPOCHS:-30}
tool=molgraph; mve=""
[ "${MVE:-0}" = 1 ] && tool=molgraph-mve mve="uncertainty=mve"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$ROOT MOLGRAPH_DATA=${MOLGRAPH_DATA:-/work/shared/data}
for ds in ${1:-esol bbbp lipophilicity}; do
  data=$ds; extra=""
  # the embedded ESOL is the same table; the shared file keeps the row ids of the splits
  [ "$ds" = esol ] && extra="data.path=$MOLGRAPH_DATA/molecules/delaney-processed.csv"
  for seed in ${SEEDS:-0 1 2}; do
    out=$HERE/runs/$tool/$ds/seed$seed
    [ -f "$out/metrics.json" ] && continue
    echo "$(date -u +%T) $tool $ds seed$seed"
    (cd "$ROOT" && "$PYTHON" -m molgraph.cli.main train data=$data $extra encoder=dmpnn \
      split=file split.path=$HERE/splits/$ds/seed$seed/split.json split.skip_missing=true \
      $mve ensemble=5 seed=$seed trainer.max_epochs=$EPOCHS patience=$EPOCHS num_workers=1 \
      trainer.enable_progress_bar=false hydra.run.dir=$out) > "$HERE/runs/${tool}_${ds}_seed$seed.log" 2>&1 \
      || echo "failed: $ds seed$seed (see runs/${tool}_${ds}_seed$seed.log)"
  done
done
echo "$(date -u +%T) $tool done"
