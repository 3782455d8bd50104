#!/usr/bin/env bash
# Train the project's own VQD-SR weights (vsvqdsr/models/vqdsr-ft) and the paper's ablation pair, then
# score them on the quality benchmark. This is the exact recipe behind vsvqdsr/models/vqdsr-ft.json;
# the defaults are the small CPU run that was affordable on the project's 2-core machine
# (about 35 min per 500 iterations at 1 torch thread with other work running). For a GPU run raise
# the budget through the environment, e.g.
#
#   DEVICE=cuda ITERS=20000 ABL_ITERS=20000 BATCH=8 FRAMES=15 PATCH=256 THREADS=0 WORKERS=8 \
#     scripts/train_own_weights.sh
#
# Steps:
#   1. HR training clips (960x540, 24 fps, FFV1) from `CLEAN_ONLY=1 scripts/make_degrade_data.sh`:
#      synfig's prologue_kid animation, pans over pirates/macwolfen/backdrop, 12 openclipart drawings.
#      None of them is a benchmark source (docs/benchmark.md; the data loaders refuse a benchmark set).
#   2. Stage 2 from AnimeSR v1 (its 48 feedback input channels dropped) as a fidelity fine-tune:
#      L1 against the clean GT (--gan-weight 0 --percep-weight 0), LR 1e-4, EMA 0.99, seed 7.
#        basic : basic operators + H.264 (--degrader none), ITERS iterations -> vqdsr-ft
#        vq    : basic operators + the VQ degradation model (DEGRADER) + H.264, ABL_ITERS iterations
#      The ablation compares vq with basic's checkpoint at the same ABL_ITERS iterations (same seed,
#      so the same clips, crops and basic-operator draws; only the VQ step differs). scripts/run_ablation.sh
#      runs the pair over several seeds and reads the verdict (docs/training.md section 7, session 5).
#   3. Round B (what made vqdsr-ft win SSIMULACRA2 everywhere: more varied artwork, not more steps):
#      `CLEAN_ONLY=1 MORE=1 MORE_CLIPART=1 scripts/make_degrade_data.sh DATA_B` adds 7 more
#      synfig-examples sources (candy, japan, wallpaper, installer-logo, logo; star and cells
#      animations) and 24 more openclipart drawings (47 clips in all), then ITERS_B iterations of the
#      same L1 fine-tune from basic's final weights, seed 13 -> vqdsr-ft.
#   4. Rounds C, D and G, 300 iterations each from the previous round on round B's clips, with the
#      stage-2 extras (docs/training.md section 4): C clean sources (--clean-prob 0.3) and antialiased
#      downscales (--antialias-prob 0.5), seed 17; D all bilinear/bicubic downscales antialiased and the
#      edge-slope loss (--grad-weight 1), seed 19; G the same plus 3 soft-shaded stills without ink
#      lines (SOFT=1 data, weighted 4x), seed 31 -> vqdsr-ft.
#   5. Export, then `vqdsr eval` with the ablation pair as checkpoints and vqdsr-ft by path.
#
# Env: DATA (data/train), DATA_B (data/train_more), ITERS_B (400), ITERS_C (300, rounds C/D/G),
#      THREADS_B (2), RUNS (runs/own), EVAL_SET (eval_set), EVAL_OUT (out/eval), ITERS (1000),
#      ABL_ITERS (150), BATCH (2), FRAMES (5), PATCH (128), LR (1e-4), DEVICE (auto), THREADS (1 per
#      run on the CPU), WORKERS (0), DEGRADER (degrade-lite), PARALLEL (1: both runs at once),
#      VQ_COLOUR_SIGMA (0 = paper: the raw VQ output; the session-4 ablation used 1.5),
#      GAN_WEIGHT and PERCEP_WEIGHT (0 and 0: the fidelity fine-tune; the paper's stage 2 uses 1 and 1).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data/train}
DATA_B=${DATA_B:-data/train_more}
ITERS_B=${ITERS_B:-400}
ITERS_C=${ITERS_C:-300}
THREADS_B=${THREADS_B:-2}
RUNS=${RUNS:-runs/own}
EVAL_SET=${EVAL_SET:-eval_set}
EVAL_OUT=${EVAL_OUT:-out/eval}
ITERS=${ITERS:-1000}
ABL_ITERS=${ABL_ITERS:-150}
BATCH=${BATCH:-2}
FRAMES=${FRAMES:-5}
PATCH=${PATCH:-128}
LR=${LR:-1e-4}
DEVICE=${DEVICE:-auto}
THREADS=${THREADS:-1}
WORKERS=${WORKERS:-0}
DEGRADER=${DEGRADER:-degrade-lite}
VQ_COLOUR_SIGMA=${VQ_COLOUR_SIGMA:-0}
PARALLEL=${PARALLEL:-1}
GAN_WEIGHT=${GAN_WEIGHT:-0}
PERCEP_WEIGHT=${PERCEP_WEIGHT:-0}
VQDSR=${VQDSR:-vqdsr}
SAVE=$ABL_ITERS  # the basic run keeps iter_ABL_ITERS.pt, the ablation partner

[ -f "$DATA/clean/kid.mkv" ] || CLEAN_ONLY=1 scripts/make_degrade_data.sh "$DATA" 24

run() {  # run NAME DEGRADER ITERATIONS
  "$VQDSR" train-vsr --stage 2 --data "$DATA/clean" --out "$RUNS/$1" --init animesr-v1 --degrader "$2" \
    --iters "$3" --batch "$BATCH" --frames "$FRAMES" --patch "$PATCH" --lr "$LR" --ema 0.99 \
    --gan-weight "$GAN_WEIGHT" --percep-weight "$PERCEP_WEIGHT" --workers "$WORKERS" --threads "$THREADS" --device "$DEVICE" \
    --seed 7 --save-every "$SAVE" --sample-every 100 --log-every 10 --vq-colour-sigma "$VQ_COLOUR_SIGMA"
}
if [ "$PARALLEL" = 1 ]; then
  run basic none "$ITERS" & p1=$!
  run vq "$DEGRADER" "$ABL_ITERS" & p2=$!
  wait $p1; wait $p2
else
  run basic none "$ITERS"
  run vq "$DEGRADER" "$ABL_ITERS"
fi
ck=$(printf '%s/basic/checkpoints/iter_%07d.pt' "$RUNS" "$ABL_ITERS")
"$VQDSR" export "$RUNS/basic" -o "$RUNS/round-a.safetensors" --name round-a --force

# round B: more varied artwork, from round A's weights
[ -f "$DATA_B/clean/more_cells.mkv" ] || CLEAN_ONLY=1 MORE=1 MORE_CLIPART=1 scripts/make_degrade_data.sh "$DATA_B" 24
"$VQDSR" train-vsr --stage 2 --data "$DATA_B/clean" --out "$RUNS/more" --init "$RUNS/round-a.safetensors" \
  --degrader none --iters "$ITERS_B" --batch "$BATCH" --frames "$FRAMES" --patch "$PATCH" --lr "$LR" --ema 0.99 \
  --gan-weight "$GAN_WEIGHT" --percep-weight "$PERCEP_WEIGHT" --workers "$WORKERS" --threads "$THREADS_B" \
  --device "$DEVICE" --seed 13 --save-every 100 --sample-every 100 --log-every 10
"$VQDSR" export "$RUNS/more" -o "$RUNS/round-b.safetensors" --name round-b --force

# rounds C, D, G (session 4: the ColorVideoVDP loss to realesr-animevideov3 was dark/bright rims that
# the outlined cel sets teach; docs/training.md section 7): 300 iterations each on round B's clips,
# each from the previous round, with the stage-2 extras that measured better.
more() {  # more NAME INIT SEED EXTRA... (EXTRA: more --data entries first, then options)
  local name=$1 init=$2 seed=$3; shift 3
  local data=("$DATA_B/clean")
  while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do data+=("$1"); shift; done
  "$VQDSR" train-vsr --stage 2 --data "${data[@]}" --out "$RUNS/$name" --init "$init" --degrader none \
    --iters "$ITERS_C" --batch "$BATCH" --frames "$FRAMES" --patch "$PATCH" --lr "$LR" --ema 0.99 \
    --gan-weight "$GAN_WEIGHT" --percep-weight "$PERCEP_WEIGHT" --workers "$WORKERS" --threads "$THREADS_B" \
    --device "$DEVICE" --seed "$seed" --save-every 100 --sample-every 100 --log-every 10 "$@"
}
more roundc "$RUNS/round-b.safetensors" 17 --clean-prob 0.3 --antialias-prob 0.5
more roundd-grad "$RUNS/roundc/checkpoints/latest.pt" 19 --clean-prob 0.3 --antialias-prob 1.0 --grad-weight 1
# round G: + 3 soft-shaded stills with no ink lines (SOFT=1), each listed 4 times in --data so that
# they are about a fifth of the sampled frames (rounds B to D ran before these clips existed: with them
# already in DATA_B, those rounds would sample them once each too)
[ -f "$DATA_B/clean/soft_gradient.mkv" ] || CLEAN_ONLY=1 MORE=1 MORE_CLIPART=1 SOFT=1 scripts/make_degrade_data.sh "$DATA_B" 24
soft=("$DATA_B"/clean/soft_*.mkv)
more roundg-soft "$RUNS/roundd-grad/checkpoints/latest.pt" 31 "${soft[@]}" "${soft[@]}" "${soft[@]}" \
  --clean-prob 0.3 --antialias-prob 1.0 --grad-weight 1
"$VQDSR" export "$RUNS/roundg-soft" -o "$RUNS/vqdsr-ft.safetensors" --name vqdsr-ft --force
"$VQDSR" export "$ck" -o "$RUNS/ablation-basic-$ABL_ITERS.safetensors" --name "ablation-basic-$ABL_ITERS" --force
"$VQDSR" export "$RUNS/vq" -o "$RUNS/ablation-vq-$ABL_ITERS.safetensors" --name "ablation-vq-$ABL_ITERS" --force

[ -f "$EVAL_SET/benchmark.json" ] || "$VQDSR" eval build --out "$EVAL_SET"
"$VQDSR" eval "$EVAL_SET" --out "$EVAL_OUT" --methods bicubic lanczos realesr-animevideov3 animesr-v1 animesr-v2 \
  --checkpoint "$RUNS/vqdsr-ft.safetensors" "$RUNS/round-a.safetensors" "$RUNS/round-b.safetensors" \
  "$RUNS/ablation-basic-$ABL_ITERS.safetensors" \
  "$RUNS/ablation-vq-$ABL_ITERS.safetensors"
"$VQDSR" eval verdict "$EVAL_OUT/results.json" vqdsr-ft || true
