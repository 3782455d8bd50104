#!/usr/bin/env bash
# Does `vqdsr adapt` pay? The benchmark's heaviest chain (old-analogue) plays "the user's show", made
# from *training* clips; the adapted model is compared, in one eval run, with the default model and with
# the same fine-tune (same base, iterations, crops, losses, seed) using basic operators only (no VQ step).
#
# Usage: scripts/adapt_experiment.sh [EVAL_SET=eval_set] [OUT=runs/adapt-exp]
#   CLEAN      clean training clips (default data/train_more/clean: scripts/make_degrade_data.sh)
#   SHOW       the clips that become the show (default: the prologue_kid animation and four pans of CLEAN)
#   MINUTES    adapt's whole budget (default 30); VSR_ITERS caps both fine-tunes (default 300)
#   THREADS    torch threads per training (default 1); METHODS the eval's other methods
#   PERCEP, GAN  the fine-tunes' perceptual and adversarial weights (default 0, 0)
# Writes OUT/show (make_show.py), OUT/basic (the basic-operator run), the models "show-adapt" and
# OUT/show-basic.safetensors, and OUT/eval (results.md, results.json, crops.png). Needs a few hours
# of a 2-core CPU at the defaults; minutes on a GPU (DEVICE=cuda).
set -euo pipefail
EVAL_SET=${1:-eval_set}
OUT=${2:-runs/adapt-exp}
CLEAN=${CLEAN:-data/train_more/clean}
MINUTES=${MINUTES:-30}
VSR_ITERS=${VSR_ITERS:-300}
THREADS=${THREADS:-1}
PERCEP=${PERCEP:-0}   # 0 and 0: a fidelity fine-tune, as the base (vqdsr-ft) was trained; 1 and 1: the paper's
GAN=${GAN:-0}         # stage-2 losses, a GAN whose fresh discriminator a short budget cannot settle
DEVICE=${DEVICE:-cpu}
PYTHON=${PYTHON:-python3}
METHODS=${METHODS:-realesr-animevideov3 animesr-v1 animesr-v2 realesrgan-x4plus-anime vqdsr-ft}
if [ -z "${SHOW:-}" ]; then
  SHOW="$CLEAN/kid.mkv $CLEAN/macwolfen.mkv $CLEAN/backdrop.mkv $CLEAN/clip_3.mkv $CLEAN/more_candy.mkv"
fi
mkdir -p "$OUT"

# 1. the show: old-analogue damage on training clips (LQ at 1/4 size, clean references at full size)
# shellcheck disable=SC2086
[ -f "$OUT/show/show.json" ] || "$PYTHON" scripts/make_show.py $SHOW --out "$OUT/show" --severity old-analogue --force

# 2. adapt: degrader stages 1 + 2 on the show's frames, floor vs damage, VSR stage 2 from vqdsr-ft
vqdsr adapt "$OUT"/show/lq/*.mkv --reference "$OUT"/show/clean/*.mkv --out show-adapt --clean "$CLEAN" \
  --minutes "$MINUTES" --vsr-iters "$VSR_ITERS" --degrader-crop 128 --threads "$THREADS" --device "$DEVICE" \
  --percep-weight "$PERCEP" --gan-weight "$GAN" --work "$OUT/adapt" --force > "$OUT/adapt.json"
# the budget decides adapt's VSR iterations (at most VSR_ITERS): the basic run takes the same number
ITERS=$("$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['vsr_iterations'])" "$OUT/adapt.json")

# 3. the same fine-tune with basic operators only: adapt's VSR recipe and iterations, --degrader none
vqdsr train-vsr --stage 2 --data "$CLEAN" --out "$OUT/basic" --init vqdsr-ft --degrader none \
  --iters "$ITERS" --batch 2 --frames 5 --patch 128 --topk released --workers 0 --seed 0 \
  --percep-weight "$PERCEP" --gan-weight "$GAN" \
  --save-every 1000000000 --sample-every 1000000000 --threads "$THREADS" --device "$DEVICE"
vqdsr export "$OUT/basic" --output "$OUT/show-basic.safetensors" --force

# 4. one eval run: every severity, the default, the adapted model, the basic-operator fine-tune
# shellcheck disable=SC2086
vqdsr eval "$EVAL_SET" --out "$OUT/eval" --methods $METHODS show-adapt \
  --checkpoint "$OUT/show-basic.safetensors" --threads 2
