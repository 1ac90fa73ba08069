#!/usr/bin/env bash
# GVP and GIN on a ProteinGym-format scan under the three ProteinGym schemes, every fold
# as its own `molgraph train` process on one GPU, then the report with the one-hot ridge
# beside them:
#   bash experiments/proteingym/run_gnn.sh OUT gb1 trainer.max_epochs=30
#   PARALLEL=3 bash experiments/proteingym/run_gnn.sh OUT avgfp trainer.max_epochs=5
# GB1's four mutated positions (39, 40, 41, 54) fill at most 4 folds, so its modulo and
# contiguous schemes use k=4 (each position a fold: the two schemes coincide); random k=5.
# ENCODERS (default "gvp gin"), SCHEMES (default "random modulo contiguous") narrow it;
# DEVICE_ARGS (default "trainer=gpu") sets the trainer; PARALLEL (default 4) is how many
# folds train at once (each holds a copy of its data and activations on the GPU: 15 avGFP
# folds at once ran an H200 out of memory; CPU: DEVICE_ARGS=" " PARALLEL=1). A fold whose
# metrics.json exists is skipped, so rerunning after an interruption finishes the rest
# (an unfinished fold starts again from scratch).
set -u
out=${1:?output folder}
data=${2:?gb1 or avgfp}
extra=("${@:3}")
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
read -ra encoders <<<"${ENCODERS:-gvp gin}"
read -ra schemes <<<"${SCHEMES:-random modulo contiguous}"
read -ra device <<<"${DEVICE_ARGS:-trainer=gpu}"
parallel=${PARALLEL:-4}
mkdir -p "$out"
for encoder in "${encoders[@]}"; do
    for scheme in "${schemes[@]}"; do
        k=5
        [[ $data == gb1 && $scheme != random ]] && k=4
        for ((fold = 0; fold < k; fold++)); do
            name=$data-$scheme-$encoder/fold$fold
            [[ -f $out/$name/metrics.json ]] && continue
            rm -rf "${out:?}/$name"
            mkdir -p "$out/$name"
            while (($(jobs -rp | wc -l) >= parallel)); do wait -n; done
            MOLGRAPH_CACHE=$out/cache/$data-$scheme-$encoder-$fold molgraph train \
                experiment=proteingym_$encoder data=${data}_dms split.scheme=$scheme \
                split.k=$k split.fold=$fold num_workers=1 trainer.enable_progress_bar=false \
                "${device[@]}" "hydra.run.dir=$out/$name" "${extra[@]}" \
                >"$out/$name/train.log" 2>&1 || echo "FAILED $name (see $out/$name/train.log)" &
        done
    done
done
wait
rm -rf "$out/cache"
