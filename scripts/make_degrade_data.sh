#!/usr/bin/env bash
# Make real low-quality (LQ) animation frames for training the VQ degradation model.
#
# The paper's RAL set (real low-quality animation) is private. This script makes a stand-in:
#   1. clean cel renders: synfig-examples (GPL-2+) rendered with `synfig` -- the prologue_kid.sif
#      character animation, plus camera pans/zooms (ffmpeg zoompan) over cel stills
#      (pirates.sif, macwolfen.sif, backdrop.sif); optionally openclipart SVGs (public domain,
#      `apt-get install openclipart-svg`, rendered with rsvg-convert) when present;
#   2. REAL lossy chains run with ffmpeg on those clips (every step is an actual encode/decode):
#      mpeg2i  : 720x480, interlaced (two fields), MPEG-2 at 1.2 Mb/s with interlaced DCT/ME,
#                decoded and deinterlaced with yadif -- DVD/broadcast-style combing residue and blocks;
#      mpeg4   : 640x360 bilinear downscale, MPEG-4 part 2 (q 12) -- old web/DivX-style blocking;
#      h264x2  : 854x480 H.264 CRF 36, then a second generation (scaled to 480x270, H.264 CRF 30,
#                scaled back to 854x480 bicubic) -- re-upload generation loss;
#      analog  : horizontal bandwidth loss (720->352->720 wide), 4:1:1 chroma, slight blur, MPEG-2 at
#                2.5 Mb/s -- VHS/analogue-capture-style smear and chroma bleed.
#   3. LQ frames are written as PNG at the chains' native SD size (360p-480p, like RAL):
#      OUT/lq/<chain>_<clip>/%05d.png. The clean clips stay in OUT/clean (not used for training:
#      VQGAN training is unpaired, it only sees LQ frames).
#
# Usage: scripts/make_degrade_data.sh [OUT=data/degrade] [FPS=8]
#        CLEAN_ONLY=1 stops after step 1 (the clean clips are what VSR training uses);
#        MORE=1 adds 7 more synfig-examples sources as clean clips (OUT/clean/more_*.mkv), and
#        MORE_CLIPART=1 with it up to 24 more openclipart drawings (OUT/clean/more_clip_*.mkv);
#        SOFT=1 adds 3 soft-shaded synfig-examples stills with no ink lines (OUT/clean/soft_*.mkv);
#        LR_SCALE=1 runs the chains at the VSR model's LR size instead (every clip first scaled x1/4 to
#        240x136, bitrates scaled with the area) into OUT/lq_lr: LQ frames with the pixel density of
#        the LR frames the degrader is applied to in VSR stage 2 (the paper's RAL frames are real LR
#        footage; SD-size frames of 960x540 renders are about 4x sparser);
#        CHAINS_ONLY=1 skips step 1 and runs the chains over the clips already in OUT/clean;
#        OLD=1 also makes "old footage" LQ frames at LR size from OUT/clean (scripts/make_old_footage_data.py:
#        the benchmark's old-film / old-analogue damage families with parameters drawn per sample --
#        optical blur and grain before the downscale, chroma bleed, 2-3 codec generations; analogue tape
#        ringing, chroma loss, line jitter, noise) into OUT/lq_old/lq (OLD_SAMPLES crops per clip, default 4;
#        OLD_SEED, default 0); PYTHON names the interpreter (default python3).
# Needs: synfig, synfig-examples, ffmpeg with libx264 (Debian packages).
set -euo pipefail
OUT=${1:-data/degrade}
FPS=${2:-8}
EX=${SYNFIG_EXAMPLES:-/usr/share/doc/synfig-examples/examples}
THREADS=${THREADS:-2}
mkdir -p "$OUT/render" "$OUT/clean" "$OUT/lq"
FF=(ffmpeg -hide_banner -loglevel error -y)
CLIPART=/usr/share/openclipart/svg

# render_clipart AWK_RULE COUNT PREFIX: the first COUNT openclipart SVGs that rsvg-convert can
# render, of those picked by AWK_RULE over the sorted file list, as OUT/render/PREFIX_<n>.png
render_clipart() {
  local n=0 svg
  while IFS= read -r svg; do
    rsvg-convert -w 1280 -b white "$svg" -o "$OUT/render/$3_$n.png" 2>/dev/null || continue
    n=$((n + 1)); [ $n -ge "$2" ] && break
  done < <(find "$CLIPART" -name '*.svg' | sort | awk "$1")
}
# pan_clip IMAGE NAME: slow zoom-in pan over a still, 40 frames 960x540 -> OUT/clean/NAME.mkv
pan_clip() {
  "${FF[@]}" -i "$1" -vf "format=rgba,premultiply=inplace=1,format=rgb24,scale=1600:900,\
zoompan=z='1+0.01*on':x='(iw-iw/zoom)*on/40':y='(ih-ih/zoom)*on/60':d=40:s=960x540:fps=$FPS" \
    -frames:v 40 -c:v ffv1 "$OUT/clean/$2.mkv"
}

# ---- 1. clean renders -------------------------------------------------------------------
if [ "${CHAINS_ONLY:-0}" != 1 ]; then
if [ ! -f "$OUT/render/kid.done" ]; then
  echo "rendering prologue_kid.sif (5 s at $FPS fps, 960x540)" >&2
  synfig -q -T "$THREADS" -t png -w 960 -h 540 --fps "$FPS" --begin-time 0 --end-time 5s \
    -i "$EX/prologue_kid.sif" -o "$OUT/render/kid.png" 2>/dev/null
  touch "$OUT/render/kid.done"
fi
for s in pirates macwolfen backdrop; do
  [ -f "$OUT/render/$s.png" ] && continue
  echo "rendering $s.sif (1600x900 still)" >&2
  synfig -q -T "$THREADS" -t png -w 1600 -h 900 -i "$EX/$s.sif" -o "$OUT/render/$s.png" 2>/dev/null
done
# optional public-domain clip art
if [ -d "$CLIPART" ] && [ ! -f "$OUT/render/clipart.done" ]; then
  render_clipart 'NR % 500 == 1' 12 clip
  touch "$OUT/render/clipart.done"
fi

# clean clips (lossless FFV1, 960x540, RGB flattened on white)
"${FF[@]}" -framerate "$FPS" -pattern_type glob -i "$OUT/render/kid.*.png" \
  -vf "format=rgba,premultiply=inplace=1,format=rgb24,scale=960:540" -c:v ffv1 "$OUT/clean/kid.mkv"
i=0
for img in "$OUT"/render/pirates.png "$OUT"/render/macwolfen.png "$OUT"/render/backdrop.png "$OUT"/render/clip_*.png; do
  [ -f "$img" ] || continue
  name=$(basename "$img" .png)
  pan_clip "$img" "$name"  # slow zoom-in pan: 40 frames, zoom 1.0 -> 1.4, drifting diagonally
  i=$((i + 1))
done

# optional (MORE=1): more synfig-examples artwork as extra clean clips -- glossy gradients (candy),
# flat fills with hard edges (japan), a textured backdrop (wallpaper), outlined logos with gradients
# (installer-logo, logo) as the same slow pans, plus two animations: star (flat, outlined) and cells
# (soft animated gradients). Never the benchmark's eye/headmo/eyes.sif (vsvqdsr/evaluation/sources.py).
if [ "${MORE:-0}" = 1 ]; then
  for s in candy japan wallpaper installer-logo logo; do
    case "$s" in eye|eyes|headmo) echo "refusing benchmark source $s.sif" >&2; exit 2;; esac
    if [ ! -f "$OUT/render/more_$s.png" ]; then
      echo "rendering $s.sif (1600x900 still)" >&2
      synfig -q -T "$THREADS" -t png -w 1600 -h 900 -i "$EX/$s.sif" -o "$OUT/render/more_$s.png" 2>/dev/null
    fi
    pan_clip "$OUT/render/more_$s.png" "more_$s"
  done
  # MORE_CLIPART=1: and up to 24 more openclipart drawings, picked by a rule of their own (the
  # benchmark takes NR % 500 == 251, the base set NR % 500 == 1)
  if [ "${MORE_CLIPART:-0}" = 1 ] && [ -d "$CLIPART" ] && [ ! -f "$OUT/render/more_clipart.done" ]; then
    render_clipart 'NR % 250 == 126' 24 more_clip
    touch "$OUT/render/more_clipart.done"
  fi
  for img in "$OUT"/render/more_clip_*.png; do
    [ "${MORE_CLIPART:-0}" = 1 ] && [ -f "$img" ] || continue
    pan_clip "$img" "$(basename "$img" .png)"
  done
  for a in star:5s cells:2s; do
    s=${a%%:*}; len=${a#*:}
    if [ ! -f "$OUT/render/more_$s.done" ]; then
      echo "rendering $s.sif ($len at $FPS fps, 960x540)" >&2
      synfig -q -T "$THREADS" -t png -w 960 -h 540 --fps "$FPS" --begin-time 0 --end-time "$len" \
        -i "$EX/$s.sif" -o "$OUT/render/more_$s.png" 2>/dev/null
      touch "$OUT/render/more_$s.done"
    fi
    "${FF[@]}" -framerate "$FPS" -pattern_type glob -i "$OUT/render/more_$s.*.png" \
      -vf "format=rgba,premultiply=inplace=1,format=rgb24,scale=960:540" -c:v ffv1 "$OUT/clean/more_$s.mkv"
  done
fi

# optional (SOFT=1): soft-shaded synfig-examples artwork with no ink lines, as the same slow pans --
# airbrushed gradient shapes (gradient), a lens-flare glow (sparkle), shaded toruses over a checker
# (z_depth_test). (warpcube was left out: over 3 min for one still here.) Cel-style sets are nearly all
# outlined, which teaches a network to draw a dark rim along every edge; these show edges without one.
if [ "${SOFT:-0}" = 1 ]; then
  for s in gradient sparkle z_depth_test; do
    case "$s" in eye|eyes|headmo) echo "refusing benchmark source $s.sif" >&2; exit 2;; esac
    if [ ! -f "$OUT/render/soft_$s.png" ]; then
      echo "rendering $s.sif (1600x900 still, time 0)" >&2
      synfig -q -T "$THREADS" -t png -w 1600 -h 900 --time 0 -i "$EX/$s.sif" -o "$OUT/render/soft_$s.png" 2>/dev/null
    fi
    pan_clip "$OUT/render/soft_$s.png" "soft_$s"
  done
fi

fi  # step 1
[ "${CLEAN_ONLY:-0}" = 1 ] && { echo "clean clips: $(ls "$OUT"/clean/*.mkv | wc -l) under $OUT/clean" >&2; exit 0; }

# ---- optional (OLD=1): old-footage LQ frames from the clean (training) clips --------------
if [ "${OLD:-0}" = 1 ]; then
  "${PYTHON:-python3}" "$(dirname "$0")/make_old_footage_data.py" "$OUT/clean" --out "$OUT/lq_old" --force \
    --samples "${OLD_SAMPLES:-4}" --seed "${OLD_SEED:-0}"
fi

# ---- 2. lossy chains -> 3. LQ frames ---------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# degrade_clip CLEAN LQ_DIR SUFFIX M2_SIZE "M2_RATE M2_MAXRATE M2_BUFSIZE" M4_SIZE H264_SIZE H264_GEN2_SIZE
#              ANALOG_NARROW ANALOG_SIZE ANALOG_RATE: the four chains on one clip -> LQ_DIR/<chain>_<clip>/
degrade_clip() {
  local clean=$1 lq=$2 c m2b m2max m2buf
  c=$(basename "$clean" .mkv)
  read -r m2b m2max m2buf <<< "$5"
  echo "degrading $c$3" >&2
  # mpeg2i: interlaced MPEG-2 then yadif
  "${FF[@]}" -i "$clean" -vf "scale=$4:flags=bicubic,fps=24,interlace=scan=tff:lowpass=linear" \
    -c:v mpeg2video -b:v "$m2b" -maxrate "$m2max" -bufsize "$m2buf" -flags +ilme+ildct -top 1 -pix_fmt yuv420p "$tmp/m2.mpg"
  mkdir -p "$lq/mpeg2i_$c"
  "${FF[@]}" -i "$tmp/m2.mpg" -vf "yadif=mode=0:parity=tff,fps=$FPS" "$lq/mpeg2i_$c/%05d.png"
  # mpeg4 part 2
  "${FF[@]}" -i "$clean" -vf "scale=$6:flags=bilinear" -c:v mpeg4 -q:v 12 -pix_fmt yuv420p "$tmp/m4.avi"
  mkdir -p "$lq/mpeg4_$c"
  "${FF[@]}" -i "$tmp/m4.avi" "$lq/mpeg4_$c/%05d.png"
  # h264 two generations
  "${FF[@]}" -i "$clean" -vf "scale=$7:flags=bicubic" -c:v libx264 -preset veryfast -crf 36 \
    -pix_fmt yuv420p "$tmp/h1.mp4"
  "${FF[@]}" -i "$tmp/h1.mp4" -vf "scale=$8:flags=area" -c:v libx264 -preset veryfast -crf 30 \
    -pix_fmt yuv420p "$tmp/h2.mp4"
  mkdir -p "$lq/h264x2_$c"
  "${FF[@]}" -i "$tmp/h2.mp4" -vf "scale=$7:flags=bicubic" "$lq/h264x2_$c/%05d.png"
  # analogue-style: bandwidth loss, 4:1:1 chroma, blur, MPEG-2
  "${FF[@]}" -i "$clean" -vf "scale=$9:flags=area,format=yuv411p,scale=${10}:flags=bicubic,\
gblur=sigma=0.7,format=yuv420p" -c:v mpeg2video -b:v "${11}" "$tmp/an.mpg"
  mkdir -p "$lq/analog_$c"
  "${FF[@]}" -i "$tmp/an.mpg" "$lq/analog_$c/%05d.png"
}
if [ "${LR_SCALE:-0}" = 1 ]; then
  # the same four chains at 240x136 (x1/4 of the clean clips), bitrates scaled by the frame area
  LQ="$OUT/lq_lr"
  for clean in "$OUT"/clean/*.mkv; do
    degrade_clip "$clean" "$LQ" " at LR size" 240:136 "150k 190k 230k" 240:136 240:136 136:76 120:136 240:136 250k
  done
else
  LQ="$OUT/lq"
  for clean in "$OUT"/clean/*.mkv; do
    degrade_clip "$clean" "$LQ" "" 720:480 "1200k 1500k 1835k" 640:360 854:480 480:270 352:480 720:480 2500k
  done
fi
echo "LQ frames: $(find "$LQ" -name '*.png' | wc -l) in $(ls "$LQ" | wc -l) folders under $LQ" >&2
