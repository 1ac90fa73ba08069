#!/usr/bin/env bash
# GB1 (FLIP three_vs_rest and low_vs_high, GVP and EGNN, seeds 0-2: 12 runs) or avGFP
# (random split, GVP, seeds 0-2: 3 runs) as parallel `molgraph train` processes on one
# GPU, then the table. Extra arguments are overrides given to every run:
#   bash experiments/proteins/run_gpu.sh OUT gb1 trainer.max_epochs=40
#   bash experiments/proteins/run_gpu.sh OUT avgfp +trainer.max_time=00:00:08:00
# ENCODERS (default "gvp egnn") and SPLITS (default "three_vs_rest low_vs_high") narrow gb1;
# SEEDS (default "0 1 2") picks the seeds.
set -u
out=${1:?output folder}
group=${2:?gb1 or avgfp}
extra=("${@:3}")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} # a dozen processes share the CPU cores
mkdir -p "$out/runs"
read -ra encoders <<<"${ENCODERS:-gvp egnn}"
read -ra splits <<<"${SPLITS:-three_vs_rest low_vs_high}"
train() { # name, overrides...
    local name=$1
    shift
    molgraph train trainer=gpu trainer.enable_progress_bar=false "hydra.run.dir=$out/runs/$name" \
        "$@" "${extra[@]}" >"$out/runs/$name.log" 2>&1 || echo "FAILED $name (see $out/runs/$name.log)"
}
read -ra seeds <<<"${SEEDS:-0 1 2}"
for seed in "${seeds[@]}"; do
    case $group in
    gb1)
        for encoder in "${encoders[@]}"; do
            for split in "${splits[@]}"; do
                train "gb1-$split-$encoder-seed$seed" experiment=gb1_$encoder seed=$seed \
                    split.column=split_$split split.validation_column=split_${split}_validation &
            done
        done
        ;;
    avgfp) train "avgfp-random-gvp-seed$seed" experiment=avgfp_gvp seed=$seed & ;;
    *) echo "unknown group $group (gb1 or avgfp)" >&2 && exit 2 ;;
    esac
done
wait
python "$(dirname "$0")/collect.py" "$out/runs"
