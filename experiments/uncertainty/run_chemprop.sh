#!/usr/bin/env bash
# Train chemprop 2.3.1 (--ensemble-size 5) on the shared split files and write its
# per-member predictions on val and test (preds_<part>_individual.csv); one thread.
#   EPOCHS=30 bash experiments/uncertainty/run_chemprop.sh [dataset ...]
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
CHEMPROP=${CHEMPROP:-/work/chemprop-venv/bin/chemprop}
EPOCHS=${EPOCHS:-30}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
for ds in "${@:-esol bbbp lipophilicity}"; do
  for ds1 in $ds; do
    task=regression; [ "$ds1" = bbbp ] && task=classification
    for seed in 0 1 2; do
      split=$HERE/splits/$ds1/seed$seed
      out=$HERE/runs/chemprop/$ds1/seed$seed
      [ -f "$out/preds_test_individual.csv" ] && continue
      mkdir -p "$out"
      echo "$(date -u +%T) chemprop $ds1 seed$seed"
      "$CHEMPROP" train -i "$split/train.csv" "$split/val.csv" "$split/test.csv" \
        -s smiles --target-columns target -t "$task" --ensemble-size 5 \
        --epochs "$EPOCHS" --pytorch-seed "$seed" --data-seed "$seed" -n 0 \
        --accelerator cpu --devices 1 -o "$out/model" > "$out/train.log" 2>&1 || { echo "train failed: $out"; continue; }
      for part in val test; do
        "$CHEMPROP" predict -i "$split/$part.csv" -s smiles --model-paths "$out/model" \
          --accelerator cpu --devices 1 -n 0 -o "$out/preds_$part.csv" >> "$out/predict.log" 2>&1 \
          || echo "predict failed: $out $part"
      done
    done
  done
done
echo "$(date -u +%T) chemprop done"
