#!/usr/bin/env bash
# Regenerate examples/sample/sample.mkv, the small real cel-animation clip that ./scripts/demo.sh and
# plugin_tests/test_sample_clip.py upscale. Sources are Debian packages only (synfig renders the
# GPL-2+ artwork shipped in synfig-examples; ffmpeg/libx264 downscale and encode).
#
#   scene 1  frames 0..83    prologue_kid.sif, t = 0..83f (3.5 s of the idle animation), a 16:9 window
#                            on the head and shoulders rendered at 1280x720 (4x the final size)
#   HARD CUT at frame 84
#   scene 2  frames 84..125  pirates.sif (a still) rendered at 2592x2104 (4x its native size); a
#                            1920x1080 crop window pans 3 px right and 1 px down per frame
#
# Every large frame is flattened onto white (synfig writes RGBA), downscaled to 320x180 with lanczos
# in RGB, converted to BT.709 limited-range YUV 4:2:0 and encoded losslessly with libx264 at 24 fps.
# The output is written atomically; running the script again rebuilds the same clip.
#
# Usage: scripts/make_sample.sh [OUTPUT.mkv]     (default: examples/sample/sample.mkv)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUTPUT="${1:-$ROOT/examples/sample/sample.mkv}"
EXAMPLES=/usr/share/doc/synfig-examples/examples
PACKAGES=(synfig synfig-examples ffmpeg)

# Clip layout (keep examples/sample/README.md and plugin_tests/test_sample_clip.py in step).
FINAL_W=320 FINAL_H=180 FPS=24
KID_FRAMES=84                 # scene 1 length; also the index of the cut frame
KID_W=1280 KID_H=720          # scene 1 render size (4x)
KID_BOX=(0 4 288 162)         # scene 1 window in prologue_kid's native 288x504 pixels: x y w h (16:9)
PAN_FRAMES=42                 # scene 2 length
PIR_W=2592 PIR_H=2104         # scene 2 render size (4x pirates' native 648x526)
PAN_W=1920 PAN_H=1080         # pan window (6x the final size)
PAN_X0=400 PAN_Y0=100 PAN_DX=3 PAN_DY=1   # window start and per-frame step, large-frame pixels

log() { printf 'make_sample: %s\n' "$*" >&2; }
die() { printf 'make_sample: error: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages ------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        log "installing ${missing[*]} with apt-get"
        apt-get install -y "${missing[@]}" || { apt-get update && apt-get install -y "${missing[@]}"; }
    else
        die "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}"
    fi
fi

find_example() {  # print the path of example $1 (.sif, or gzipped .sifz)
    local f
    for f in "$EXAMPLES/$1.sif" "$EXAMPLES/$1.sifz" "$EXAMPLES/$1.sif.gz"; do
        [ -f "$f" ] && { echo "$f"; return; }
    done
    die "$1.sif not found in $EXAMPLES (dpkg -L synfig-examples lists the files)"
}

WORK="$(mktemp -d "${TMPDIR:-/tmp}/make_sample.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK"/{kid,pirates,frames}

synfig_render() {  # synfig ARGS...; its chatter goes to a log that is shown only on failure
    synfig -q -T "$(nproc)" -t png "$@" >"$WORK/synfig.log" 2>&1 || { cat "$WORK/synfig.log" >&2; die "synfig $* failed"; }
}

count_png() { find "$1" -maxdepth 1 -name '*.png' | wc -l; }

# --- 2. scene 1: prologue_kid, a 16:9 window rendered directly at 4x ----------------------------
# synfig has no crop option, so the root canvas of a copy gets a smaller view-box (the window, in
# canvas units) and the render size; everything else in the document stays as shipped.
zcat -f "$(find_example prologue_kid)" > "$WORK/kid_src.sif"
root="$(grep -m1 -o '<canvas [^>]*>' "$WORK/kid_src.sif")"
attr() { sed -n "s/.* $1=\"\\([^\"]*\\)\".*/\\1/p" <<<"$root"; }
read -r vl vt vr vb <<<"$(attr view-box)"
viewbox="$(awk -v w="$(attr width)" -v h="$(attr height)" -v vl="$vl" -v vt="$vt" -v vr="$vr" -v vb="$vb" \
    -v x="${KID_BOX[0]}" -v y="${KID_BOX[1]}" -v bw="${KID_BOX[2]}" -v bh="${KID_BOX[3]}" 'BEGIN {
        ux = (vr - vl) / w; uy = (vt - vb) / h          # canvas units per native pixel
        printf "%.6f %.6f %.6f %.6f", vl + x * ux, vt - y * uy, vl + (x + bw) * ux, vt - (y + bh) * uy }')"
sed "0,/<canvas /{/<canvas /{s/ width=\"[0-9]*\"/ width=\"$KID_W\"/; s/ height=\"[0-9]*\"/ height=\"$KID_H\"/; s/ view-box=\"[^\"]*\"/ view-box=\"$viewbox\"/}}" \
    "$WORK/kid_src.sif" > "$WORK/kid.sif"
log "rendering prologue_kid.sif frames 0..$((KID_FRAMES - 1)) at ${KID_W}x${KID_H} (view-box $viewbox)"
synfig_render --begin-time 0f --end-time "$((KID_FRAMES - 1))f" -i "$WORK/kid.sif" -o "$WORK/kid/kid.png"
[ "$(count_png "$WORK/kid")" -eq "$KID_FRAMES" ] || die "synfig wrote $(count_png "$WORK/kid") kid frames, expected $KID_FRAMES"

# RGBA over opaque white, then lanczos down to the final size, still in RGB.
flatten="color=c=white:s=WxH:r=$FPS,format=gbrp[bg];[bg][0:v]overlay=format=rgb:shortest=1"
ffmpeg -nostdin -v error -y -framerate "$FPS" -start_number 0 -i "$WORK/kid/kid.%04d.png" \
    -filter_complex "${flatten/WxH/${KID_W}x${KID_H}},scale=$FINAL_W:$FINAL_H:flags=lanczos+accurate_rnd,format=rgb24" \
    -start_number 0 "$WORK/frames/%04d.png"

# --- 3. scene 2: pirates, one large still and a slow pan ---------------------------------------
log "rendering pirates.sif at ${PIR_W}x${PIR_H}"
zcat -f "$(find_example pirates)" > "$WORK/pirates.sif"
synfig_render --time 0f -w "$PIR_W" -h "$PIR_H" -i "$WORK/pirates.sif" -o "$WORK/pirates/pirates.png"
ffmpeg -nostdin -v error -y -loop 1 -framerate "$FPS" -i "$WORK/pirates/pirates.png" \
    -filter_complex "${flatten/WxH/${PIR_W}x${PIR_H}},crop=w=$PAN_W:h=$PAN_H:x='$PAN_X0+$PAN_DX*n':y='$PAN_Y0+$PAN_DY*n':exact=1,scale=$FINAL_W:$FINAL_H:flags=lanczos+accurate_rnd,format=rgb24" \
    -frames:v "$PAN_FRAMES" -start_number "$KID_FRAMES" "$WORK/frames/%04d.png"

total=$((KID_FRAMES + PAN_FRAMES))
[ "$(count_png "$WORK/frames")" -eq "$total" ] || die "have $(count_png "$WORK/frames") frames, expected $total"

# --- 4. encode: BT.709 limited range 4:2:0, lossless H.264, explicit colour tags ----------------
mkdir -p "$(dirname "$OUTPUT")"
tmp_out="$(dirname "$OUTPUT")/.$(basename "$OUTPUT").tmp.mkv"
log "encoding $total frames to $OUTPUT"
ffmpeg -nostdin -v error -y -framerate "$FPS" -start_number 0 -i "$WORK/frames/%04d.png" \
    -vf "scale=out_color_matrix=bt709:out_range=tv:flags=lanczos+accurate_rnd+full_chroma_int,format=yuv420p" \
    -c:v libx264 -qp 0 -preset veryslow -threads 2 -pix_fmt yuv420p \
    -colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv \
    -r "$FPS" -map_metadata -1 -fflags +bitexact -flags:v +bitexact "$tmp_out"
mv -f "$tmp_out" "$OUTPUT"

n="$(ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 "$OUTPUT")"
[ "$n" -eq "$total" ] || die "$OUTPUT decodes to $n frames, expected $total"
log "wrote $OUTPUT: $total frames ${FINAL_W}x${FINAL_H} @ $FPS fps, cut at frame $KID_FRAMES, $(stat -c %s "$OUTPUT") bytes"
