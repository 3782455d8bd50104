#!/usr/bin/env bash
# The main job: set up (first run only), then upscale the bundled sample clip 4x with vqdsr.Upscale
# through vspipe and ffmpeg, and write a side-by-side comparison frame.
#   out/demo_x4.mkv       the upscaled video (H.264)
#   out/demo_compare.png  one frame: bicubic x4 beside vqdsr.Upscale
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
"$ROOT/scripts/setup_env.sh"
export PATH="$ROOT/.venv/bin:$PATH"
OUT="${VSVQDSR_DEMO_OUT:-$ROOT/out}"   # tests point this elsewhere
mkdir -p "$OUT"
SAMPLE="examples/sample/sample.mkv"
SECONDS=0
echo "demo: upscaling $SAMPLE with vqdsr.Upscale (vspipe | ffmpeg libx264)..." >&2
tmp="$OUT/.demo_x4.$$.mkv"
trap 'rm -f "$tmp"' EXIT
vspipe -p -c y4m -a "src=$ROOT/$SAMPLE" examples/upscale.vpy - \
    | ffmpeg -hide_banner -loglevel error -y -f yuv4mpegpipe -i - -c:v libx264 -crf 16 -preset medium \
        -colorspace bt709 -color_primaries bt709 -color_trc bt709 "$tmp"
mv -f "$tmp" "$OUT/demo_x4.mkv"
python scripts/compare_frame.py "$SAMPLE" "$OUT/demo_x4.mkv" "$OUT/demo_compare.png"
elapsed=$SECONDS
frames=$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$OUT/demo_x4.mkv")
size=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=s=x:p=0 "$OUT/demo_x4.mkv")
printf 'demo: wrote %s (%s frames, %s) and %s in %d s\n' "$OUT/demo_x4.mkv" "$frames" "$size" \
    "$OUT/demo_compare.png" "$elapsed"
