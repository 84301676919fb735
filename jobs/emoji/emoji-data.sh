#!/usr/bin/env bash
# Builds the emoji benchmark (the project's embedded default data set) from
# npm packages: installs them, writes the manifests with ot-emoji-data,
# renders the video clips with the ffmpeg CLI and prints the summary.
# Idempotent and resumable: a second run reuses the packages and clips.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() {
  cat <<EOF
usage: emoji-data.sh [OUTDIR] [--with-facebook] [--clips N] [--tool PATH]

Builds the emoji benchmarks in OUTDIR (default: $REPO/data/emoji):
  emoji-{en,zh}.{train,val,test}.jsonl        one item per (emoji, vendor) 64 px PNG
  emoji-{en,zh}-video.{train,val,test}.jsonl  N short H.264 clips of the same emoji
  clips/                                      the clips and their plan (plan.tsv)
  summary.json                                items, tags, groups per split
  npm/                                        the pinned npm packages ($HERE/package.json)

  --with-facebook  add the facebook images (default: google and twitter)
  --clips N        clips in the video variant (default 300; 0: none)
  --tool PATH      the ot-emoji-data program (default: \$OT_EMOJI_DATA_TOOL,
                   $REPO/build/jobs/emoji/ot-emoji-data, or ot-emoji-data on PATH)
Needs npm and (for clips) ffmpeg. Renders two clips at a time.
EOF
}

die() { echo "emoji-data.sh: $*" >&2; exit 1; }

OUT="" VENDORS="google,twitter" CLIPS=300 TOOL="${OT_EMOJI_DATA_TOOL:-}"
while [ $# -gt 0 ]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --with-facebook) VENDORS="google,twitter,facebook" ;;
    --clips) [ $# -ge 2 ] || { usage >&2; exit 2; }; CLIPS="$2"; shift ;;
    --clips=*) CLIPS="${1#--clips=}" ;;
    --tool) [ $# -ge 2 ] || { usage >&2; exit 2; }; TOOL="$2"; shift ;;
    --tool=*) TOOL="${1#--tool=}" ;;
    -*) echo "emoji-data.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    *) [ -z "$OUT" ] || { echo "emoji-data.sh: more than one OUTDIR" >&2; exit 2; }; OUT="$1" ;;
  esac
  shift
done
[[ "$CLIPS" =~ ^[0-9]+$ ]] || { echo "emoji-data.sh: --clips needs a count, got '$CLIPS'" >&2; exit 2; }
OUT="${OUT:-$REPO/data/emoji}"

command -v npm >/dev/null 2>&1 || die "npm not found: install Node.js and npm (Debian: apt-get install npm)"
command -v node >/dev/null 2>&1 || die "node not found: install Node.js (Debian: apt-get install nodejs)"
if [ "$CLIPS" -gt 0 ]; then
  command -v ffmpeg >/dev/null 2>&1 || die "ffmpeg not found: the clips are rendered with the ffmpeg CLI (Debian: apt-get install ffmpeg)"
fi
if [ -z "$TOOL" ]; then
  if [ -x "$REPO/build/jobs/emoji/ot-emoji-data" ]; then TOOL="$REPO/build/jobs/emoji/ot-emoji-data"
  else TOOL=$(command -v ot-emoji-data || true); fi
fi
[ -n "$TOOL" ] && [ -x "$TOOL" ] || die "ot-emoji-data not found: build it (cmake --build BUILD --target ot-emoji-data) and pass --tool BUILD/jobs/emoji/ot-emoji-data"

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
NPM="$OUT/npm"
t_start=$(date +%s.%N)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# ---- 1. npm packages at the pinned versions ----------------------------------
needed="emojibase-data"
for v in ${VENDORS//,/ }; do needed="$needed emoji-datasource-$v"; done
# Prints the package.json to install from when a needed package is missing or
# at another version than pinned (keeping pinned ones already present, so
# npm does not prune them), and nothing when all are in place.
plan_npm() {
  node - "$HERE/package.json" "$NPM/node_modules" $needed <<'EOF'
const fs = require('fs');
const [pinFile, modules, ...needed] = process.argv.slice(2);
const pins = JSON.parse(fs.readFileSync(pinFile, 'utf8')).dependencies;
const installed = (name) => {
  try { return JSON.parse(fs.readFileSync(`${modules}/${name}/package.json`, 'utf8')).version; }
  catch (e) { return null; }
};
const deps = {};
let stale = false;
for (const name of Object.keys(pins)) {
  const want = needed.includes(name);
  if (want && !pins[name]) throw new Error(`${pinFile}: no pinned version of ${name}`);
  if (want && installed(name) !== pins[name]) stale = true;
  if (want || installed(name) === pins[name]) deps[name] = pins[name];
}
for (const name of needed) if (!(name in pins)) throw new Error(`${pinFile}: ${name} is not pinned`);
if (stale) process.stdout.write(JSON.stringify({ name: 'open-tag-emoji-data', private: true, dependencies: deps }, null, 2) + '\n');
EOF
}
t0=$(date +%s.%N)
pkg=$(plan_npm) || die "cannot read the pinned versions in $HERE/package.json"
if [ -n "$pkg" ]; then
  echo "emoji-data.sh: installing $needed into $NPM" >&2
  mkdir -p "$NPM"
  printf '%s' "$pkg" > "$NPM/package.json"
  npm install --prefix "$NPM" --no-audit --no-fund --legacy-peer-deps --ignore-scripts --loglevel=error >&2 \
    || die "npm install into $NPM failed (is the npm registry reachable?)"
  [ -z "$(plan_npm)" ] || die "npm install into $NPM did not produce the pinned versions"
  echo "emoji-data.sh: npm packages installed in $(elapsed "$t0") s" >&2
else
  echo "emoji-data.sh: npm packages already at the pinned versions" >&2
fi

# ---- 2. manifests, clip plan, summary ------------------------------------------
t0=$(date +%s.%N)
"$TOOL" --npm "$NPM/node_modules" --out "$OUT" --vendors "$VENDORS" --clips "$CLIPS"
echo "emoji-data.sh: manifests written in $(elapsed "$t0") s" >&2

# ---- 3. clips ---------------------------------------------------------------------
# One clip: the emoji composited on a plain background at twice the clip size
# (so zooming and panning stay sharp), moved by zoompan, H.264 yuv420p.
# Written to a temp name and renamed, so a killed run leaves no half clip.
render_clip() {
  local clip image w h fps frames motion bg
  IFS=$'\t' read -r clip image w h fps frames motion bg <<<"$1"
  local cw=$((2 * w)) ch=$((2 * h)) size=$((2 * h * 7 / 10 / 2 * 2)) d=$((frames > 1 ? frames - 1 : 1))
  local z x y center_x='iw/2-iw/zoom/2' center_y='ih/2-ih/zoom/2'
  case "$motion" in
    0) z="1+0.5*on/$d"; x=$center_x; y=$center_y ;;
    1) z="1.5-0.5*on/$d"; x=$center_x; y=$center_y ;;
    2) z="1.5"; x="(iw-iw/zoom)*on/$d"; y=$center_y ;;
    3) z="1.5"; x="(iw-iw/zoom)*on/$d"; y="(ih-ih/zoom)*on/$d" ;;
    *) echo "emoji-data.sh: $clip: unknown motion '$motion'" >&2; return 1 ;;
  esac
  local tmp="$clip.$$.tmp"
  if ffmpeg -nostdin -hide_banner -loglevel error -y -filter_complex_threads 1 -i "$image" \
      -filter_complex "color=c=0x$bg:s=${cw}x${ch}:r=1:d=1,format=rgba[bg];[0:v]scale=$size:$size:flags=bicubic,format=rgba[fg];[bg][fg]overlay=(W-w)/2:(H-h)/2:shortest=1,zoompan=z='$z':x='$x':y='$y':d=$frames:s=${w}x${h}:fps=$fps,format=yuv420p" \
      -frames:v "$frames" -c:v libx264 -preset veryfast -crf 23 -threads 1 -pix_fmt yuv420p \
      -movflags +faststart -f mp4 "$tmp"; then
    mv -f "$tmp" "$clip"
  else
    rm -f "$tmp"
    echo "emoji-data.sh: rendering $clip from $image failed" >&2
    return 1
  fi
}
export -f render_clip

if [ "$CLIPS" -gt 0 ]; then
  t0=$(date +%s.%N)
  cd "$OUT"
  rm -f clips/*.mp4.*.tmp   # left by a killed run
  todo=$(awk -F'\t' '{ if (system("test -s \"" $1 "\"") != 0) print }' clips/plan.tsv)
  n_todo=$(printf '%s' "$todo" | grep -c . || true)
  n_plan=$(grep -c . clips/plan.tsv || true)
  echo "emoji-data.sh: rendering $n_todo of $n_plan clips (2 at a time)" >&2
  if [ "$n_todo" -gt 0 ]; then
    printf '%s\n' "$todo" | xargs -d '\n' -P 2 -n 1 bash -c 'render_clip "$1"' _ \
      || die "some clips failed to render (see above); run again to retry them"
  fi
  missing=$(awk -F'\t' '{ if (system("test -s \"" $1 "\"") != 0) print $1 }' clips/plan.tsv)
  [ -z "$missing" ] || die "clips missing after rendering: $(echo "$missing" | head -3 | tr '\n' ' ')"
  echo "emoji-data.sh: clips done in $(elapsed "$t0") s" >&2
fi

echo "emoji-data.sh: done in $(elapsed "$t_start") s; summary in $OUT/summary.json" >&2
cat "$OUT/summary.json"
