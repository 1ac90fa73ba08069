#!/usr/bin/env bash
# Train a molgraph K=5 ensemble on each shared split file (member0 is the single-model
# run of the same seed); chemprop's architecture (D-MPNN, hidden 300, depth 3), one thread.
#   EPOCHS=30 bash experiments/uncertainty/run_molgraph.sh "esol bbbp lipophilicity"
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-/work/main/.venv/bin/python}
EPOCHS=${EPOCHS:-30}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=$ROOT MOLGRAPH_DATA=${MOLGRAPH_DATA:-/work/shared/data}
for ds in ${1:-esol bbbp lipophilicity}; do
  data=$ds; extra=""
  # the embedded ESOL is the same table; the shared file keeps the row ids of the splits
  [ "$ds" = esol ] && extra="data.path=$MOLGRAPH_DATA/molecules/delaney-processed.csv"
  for seed in ${SEEDS:-0 1 2}; do
    out=$HERE/runs/molgraph/$ds/seed$seed
    [ -f "$out/metrics.json" ] && continue
    echo "$(date -u +%T) molgraph $ds seed$seed"
    (cd "$ROOT" && "$PYTHON" -m molgraph.cli.main train data=$data $extra encoder=dmpnn \
      split=file split.path=$HERE/splits/$ds/seed$seed/split.json split.skip_missing=true \
      ensemble=5 seed=$seed trainer.max_epochs=$EPOCHS patience=$EPOCHS num_workers=1 \
      trainer.enable_progress_bar=false hydra.run.dir=$out) > "$HERE/runs/molgraph_${ds}_seed$seed.log" 2>&1 \
      || echo "failed: $ds seed$seed (see runs/molgraph_${ds}_seed$seed.log)"
  done
done
echo "$(date -u +%T) molgraph done"
