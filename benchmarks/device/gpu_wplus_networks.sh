#!/bin/bash
# Issue 21, item 6: the network learners of W+ (lstm, mlp, tamrl, pmtl) on CUDA.
#
# First a smoke run (every network learner, one epoch, SMOKE_TOWERS towers), then each learner
# alone on FULL_TOWERS towers with the W+ settings (defaults, 2 jobs, seed 0; pmtl with the
# pre-training stage of the CPU W+ run), one bench_scaling JSON per learner, until
# DEADLINE_S seconds after the start. Compare with the CPU W+ run by benchmarks/device_vs_cpu.py.
#
# LEARNERS (default "lstm mlp tamrl pmtl") sets which full runs, in which order.
# Usage: [DATA=folder] [LEARNERS="pmtl mlp"] bash benchmarks/device/gpu_wplus_networks.sh DEVICE OUTDIR SMOKE_TOWERS FULL_TOWERS DEADLINE_S COMMIT
# On 2026-11-29 it ran on the lent GPU machine (16 CPU cores, one H200) with the data and the
# packages that machine lacks carried along (pydantic, geopandas, shapely, pyproj, plotly as wheels):
#   DATA=.devdata/fluxnet2015 bash benchmarks/device/gpu_wplus_networks.sh cuda $OUT 4 204 440 d79d268
DEV=${1:-cuda}; OUTD=${2:-/tmp/out}; SMOKE=${3:-4}; FULL=${4:-204}; DEADLINE=${5:-450}; COMMIT=${6:-unknown}
export PYTHONUNBUFFERED=1
T0=$(date +%s)
mkdir -p "$OUTD"
DATA=${DATA:-../shared/data/fluxnet2015}
PRE='{"learners": ["pmtl"], "calibrate": true, "synthetic": ["T+2", "T-2"], "lr": 0.0005}'
python3 -c "import torch,sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
echo "cores $(nproc)"
# smoke: every network learner on a few towers, one epoch, short pre-training
S=""; for l in lstm tamrl pmtl mlp; do S="$S --param $l.max_epochs=1 --param $l.device=$DEV"; done
timeout 100 python3 benchmarks/bench_scaling.py --data $DATA --towers $SMOKE --synthetic 0 \
  --learners lstm,tamrl,pmtl,mlp --pretrain '{"learners": ["pmtl"], "epochs": 1, "finetune_epochs": 1}' $S \
  --note "smoke $DEV" --out "$OUTD/smoke_$DEV.json" > "$OUTD/smoke_$DEV.log" 2>&1 \
  || { echo SMOKE FAILED; tail -40 "$OUTD/smoke_$DEV.log"; exit 3; }
echo "SMOKE OK after $(( $(date +%s) - T0 )) s"; grep '"world"' "$OUTD/smoke_$DEV.log" | head -1
# full: each network learner of W+ on all towers (defaults, 2 jobs, seed 0), one run each
for l in ${LEARNERS:-lstm mlp tamrl pmtl}; do
  LEFT=$(( DEADLINE - ($(date +%s) - T0) ))
  [ $LEFT -lt 30 ] && { echo "no time left for $l"; break; }
  PRE_ARGS=(); [ $l = pmtl ] && PRE_ARGS=(--pretrain "$PRE")
  timeout $LEFT python3 benchmarks/bench_scaling.py --data $DATA --towers $FULL --synthetic 0 \
    --learners $l "${PRE_ARGS[@]}" --param $l.device=$DEV \
    --note "device machine: $(nproc) CPU cores, jobs 2, $DEV; $l of W+ at $COMMIT" \
    --out "$OUTD/wplus_${l}_$DEV.json" > "$OUTD/wplus_${l}_$DEV.log" 2>&1
  echo "$l rc=$? after $(( $(date +%s) - T0 )) s"; grep '"world"' "$OUTD/wplus_${l}_$DEV.log" | head -1
done
nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version --format=csv 2>/dev/null
