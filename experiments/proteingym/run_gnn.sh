#!/usr/bin/env bash
# GVP and GIN on a ProteinGym-format scan under the three ProteinGym schemes, every fold
# as its own `molgraph train` process on one GPU (folds run in parallel), then the report
# with the one-hot ridge beside them:
#   bash experiments/proteingym/run_gnn.sh OUT gb1 trainer.max_epochs=15
#   bash experiments/proteingym/run_gnn.sh OUT avgfp trainer.max_epochs=3
# GB1's four mutated positions (39, 40, 41, 54) fill at most 4 folds, so its modulo and
# contiguous schemes use k=4 (each position a fold: the two schemes coincide); random k=5.
# ENCODERS (default "gvp gin"), SCHEMES (default "random modulo contiguous") narrow it;
# DEVICE_ARGS (default "trainer=gpu") sets the trainer; SEQUENTIAL=1 runs one fold at a
# time (CPU: DEVICE_ARGS=" " SEQUENTIAL=1).
set -u
out=${1:?output folder}
data=${2:?gb1 or avgfp}
extra=("${@:3}")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
read -ra encoders <<<"${ENCODERS:-gvp gin}"
read -ra schemes <<<"${SCHEMES:-random modulo contiguous}"
read -ra device <<<"${DEVICE_ARGS:-trainer=gpu}"
mkdir -p "$out"
for encoder in "${encoders[@]}"; do
    for scheme in "${schemes[@]}"; do
        k=5
        [[ $data == gb1 && $scheme != random ]] && k=4
        for ((fold = 0; fold < k; fold++)); do
            name=$data-$scheme-$encoder/fold$fold
            mkdir -p "$out/$name"
            MOLGRAPH_CACHE=$out/cache/$data-$scheme-$encoder-$fold molgraph train \
                experiment=proteingym_$encoder data=${data}_dms split.scheme=$scheme \
                split.k=$k split.fold=$fold num_workers=1 trainer.enable_progress_bar=false \
                "${device[@]}" "hydra.run.dir=$out/$name" "${extra[@]}" \
                >"$out/$name/train.log" 2>&1 || echo "FAILED $name (see $out/$name/train.log)" &
            [[ ${SEQUENTIAL:-0} == 1 ]] && wait
        done
    done
done
wait
rm -rf "$out/cache"
