#!/usr/bin/env bash
# DDP check: the same config and seed trained on one GPU (trainer=gpu) and on two GPUs of
# one host (trainer=ddp), then epoch time and metrics side by side (collect.py):
#   [RUNS=/tmp/ddp_runs] bash experiments/ddp/check_ddp.sh OUT [overrides ...]
# OUT gets the table (ddp_check.md/.json) and each run's logs, metrics and config; the run
# directories themselves (checkpoints, predictions) stay in RUNS (default OUT/runs).
# (timeout signals the whole process group, so rank 1 ends with rank 0.)
# Default: HIV (41k molecules, scaffold split), GIN, batch 64 per GPU, 6 epochs. Each
# run is capped at RUN_TIMEOUT seconds; if the two-GPU run fails with CUDA-graph steps,
# both are run again eagerly (model.cuda_graphs=false), so a pair is always comparable.
set -u
out=${1:?output folder}
extra=("${@:2}")
timeout_s=${RUN_TIMEOUT:-120}
runs=${RUNS:-$out/runs}
mkdir -p "$out/runs" "$runs"
# COMMON replaces the workload, e.g. COMMON="experiment=gb1_gvp trainer.max_epochs=6"
read -ra common <<<"${COMMON:-data=hiv encoder=gin trainer.max_epochs=6 batch_size=64}"
common+=(seed=0 patience=100 trainer.enable_progress_bar=false)
train() { # name, overrides...
    local name=$1
    shift
    timeout "$timeout_s" python3 -m molgraph.cli.train "hydra.run.dir=$runs/$name" \
        "${common[@]}" "$@" "${extra[@]}" >"$out/runs/$name.log" 2>&1
    local code=$?
    if [ "$runs" != "$out/runs" ]; then
        mkdir -p "$out/runs/$name"
        cp "$runs/$name"/{config.yaml,metrics.csv,metrics.json,failed.json,*.log} \
            "$out/runs/$name/" 2>/dev/null
    fi
    [ $code -eq 0 ] || echo "FAILED $name (exit $code; see $out/runs/$name.log)"
    return $code
}
nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader || true
train 1gpu trainer=gpu # featurizes HIV into the cache first
if ! train 2gpu trainer=ddp trainer.devices=2; then
    train 1gpu_eager trainer=gpu model.cuda_graphs=false
    train 2gpu_eager trainer=ddp trainer.devices=2 model.cuda_graphs=false
fi
python3 "$(dirname "$0")/collect.py" "$out/runs" --out "$out"
