#!/usr/bin/env bash
# The paper's ablation on our benchmark: the same stage-2 fine-tune with and without the VQ step,
# over several seeds, scored in one `vqdsr eval` run and read off with scripts/ablation_table.py.
#
# For each seed in SEEDS, two runs from AnimeSR v1 (same seed: same clips, crops and basic-operator
# draws; only the VQ step differs), L1 fidelity fine-tune as vqdsr-ft's first step:
#   abl-basic[-sN]   basic operators + H.264 (--degrader none)
#   abl-vq[-sN]      basic operators + the VQ degradation model (DEGRADER, top-k TOPK) + H.264
# (the first seed's runs have no suffix). Then `vqdsr eval` on EVAL_SET into EVAL_OUT with AnimeSR v1
# as the reference point, and the table.
#
# Env: SEEDS ("7 8"), ITERS (150), DEGRADER (degrade-lite), TOPK (released | paper | nearest),
#      VQ_NAME (abl-vq: run name stem of the VQ recipe, so several degraders can sit side by side),
#      VQ_COLOUR_SIGMA (0 = the paper's raw VQ output), DATA (data/train), RUNS (runs/own),
#      EVAL_SET (eval_set), EVAL_OUT (out/eval-abl), BATCH (2), FRAMES (5), PATCH (128), LR (1e-4),
#      DEVICE (auto), THREADS (1 per run), GAN_WEIGHT / PERCEP_WEIGHT (0 / 0; the paper's stage 2: 1 / 1),
#      LOGS (logs: one log per run), EVAL (1; 0 = train only, e.g. to run two variants side by side and score them together).
# Finished runs (their exported .safetensors exists) are not trained again.
# A GPU run of the paper's recipe, for example:
#   DEVICE=cuda ITERS=20000 BATCH=8 FRAMES=15 PATCH=256 THREADS=0 GAN_WEIGHT=1 PERCEP_WEIGHT=1 \
#     DEGRADER=my-degrader scripts/run_ablation.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${SEEDS:-7 8}
ITERS=${ITERS:-150}
DEGRADER=${DEGRADER:-degrade-lite}
TOPK=${TOPK:-released}
VQ_NAME=${VQ_NAME:-abl-vq}
VQ_COLOUR_SIGMA=${VQ_COLOUR_SIGMA:-0}
DATA=${DATA:-data/train}
RUNS=${RUNS:-runs/own}
EVAL_SET=${EVAL_SET:-eval_set}
EVAL_OUT=${EVAL_OUT:-out/eval-abl}
BATCH=${BATCH:-2}
FRAMES=${FRAMES:-5}
PATCH=${PATCH:-128}
LR=${LR:-1e-4}
DEVICE=${DEVICE:-auto}
THREADS=${THREADS:-1}
GAN_WEIGHT=${GAN_WEIGHT:-0}
PERCEP_WEIGHT=${PERCEP_WEIGHT:-0}
VQDSR=${VQDSR:-vqdsr}
LOGS=${LOGS:-logs}
mkdir -p "$RUNS" "$LOGS"

run() {  # run NAME DEGRADER SEED
  [ -f "$RUNS/$1-$ITERS.safetensors" ] && return 0
  "$VQDSR" train-vsr --stage 2 --data "$DATA/clean" --out "$RUNS/$1" --init animesr-v1 --degrader "$2" \
    --iters "$ITERS" --batch "$BATCH" --frames "$FRAMES" --patch "$PATCH" --lr "$LR" --ema 0.99 \
    --gan-weight "$GAN_WEIGHT" --percep-weight "$PERCEP_WEIGHT" --workers 0 --threads "$THREADS" \
    --device "$DEVICE" --seed "$3" --topk "$TOPK" --vq-colour-sigma "$VQ_COLOUR_SIGMA" \
    --save-every "$ITERS" --sample-every 50 --log-every 10 > "$LOGS/$1.log" 2>&1
  "$VQDSR" export "$RUNS/$1" -o "$RUNS/$1-$ITERS.safetensors" --name "$1-$ITERS" >> "$LOGS/$1.log" 2>&1
}
basic=() vq=() first=1
for s in $SEEDS; do
  suffix=$([ $first = 1 ] && echo "" || echo "-s$s"); first=0
  echo "ablation seed $s: $RUNS/abl-basic$suffix and $RUNS/$VQ_NAME$suffix" >&2
  run "abl-basic$suffix" none "$s" & p1=$!
  run "$VQ_NAME$suffix" "$DEGRADER" "$s" & p2=$!
  wait $p1; wait $p2
  basic+=("abl-basic$suffix-$ITERS") vq+=("$VQ_NAME$suffix-$ITERS")
done
[ "${EVAL:-1}" = 1 ] || exit 0
ckpts=()
for n in "${basic[@]}" "${vq[@]}"; do ckpts+=("$RUNS/$n.safetensors"); done
"$VQDSR" eval "$EVAL_SET" --out "$EVAL_OUT" --methods animesr-v1 --checkpoint "${ckpts[@]}" --threads 2
python scripts/ablation_table.py "$EVAL_OUT/results.json" --basic "${basic[@]}" --vq "${vq[@]}"
