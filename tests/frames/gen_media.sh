#!/bin/sh
# Test media for the frame sampler, made with the ffmpeg CLI into $1.
# Ramp videos are flat grey frames with luma 16+3*N (frame N), so the grey
# level of an output pixel names the source frame that was picked.
set -eu
out=$1
ff=${FFMPEG:-ffmpeg}
script=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
mkdir -p "$out"
cd "$out"
if [ -f .done ] && [ .done -nt "$script" ]; then exit 0; fi # made by this version
f() { "$ff" -hide_banner -loglevel error -nostdin -y "$@"; }

ramp() { # ramp(frames, rate, size) as a lavfi source
  echo "color=black:s=$3:r=$2:d=1000,trim=end_frame=$1,format=yuv444p,geq=lum='16+3*N':cb=128:cr=128"
}
# H.264 with B-frames forced (b-adapt=0) so that decode and display order differ
bfr="bframes=3:b-adapt=0"
f -f lavfi -i "$(ramp 72 24 96x64)" -c:v libx264 -qp 2 -pix_fmt yuv420p -g 10 -x264-params $bfr ramp_g10.mp4
f -f lavfi -i "$(ramp 72 24 96x64)" -c:v libx264 -qp 2 -pix_fmt yuv420p -g 30 -x264-params $bfr ramp_g30.mp4
f -f lavfi -i "$(ramp 72 24 96x64)" -c:v libx264 -qp 2 -pix_fmt yuv420p -g 300 -x264-params $bfr ramp_g300.mp4
f -f lavfi -i "$(ramp 72 24 96x64)" -c:v libx264 -qp 2 -pix_fmt yuv420p10le -g 10 -x264-params $bfr ramp_10bit.mp4
f -f lavfi -i "$(ramp 72 24 96x64)" -c:v libvpx-vp9 -lossless 1 -g 10 -pix_fmt yuv420p ramp_vp9.webm
f -f lavfi -i "$(ramp 72 24 96x64)" -c:v libvpx-vp9 -lossless 1 -g 10 -pix_fmt yuv420p10le -profile:v 2 ramp_vp9_10bit.webm
# other containers: Matroska (pts only), MPEG-TS (no index, start 1.4 s), raw H.264
f -i ramp_g10.mp4 -c copy ramp_g10.mkv
# Matroska starting at 1.5 s (as a segment cut with -c copy): its Duration ends at 4.5 s
f -i ramp_g10.mp4 -c copy -output_ts_offset 1.5 ramp_off.mkv
# Matroska whose audio (4 s) outlasts its video (3 s): Duration is the audio's end
f -i ramp_g10.mp4 -f lavfi -i "sine=d=4" -c:v copy -c:a libopus ramp_audio.mkv
f -i ramp_g10.mp4 -c copy ramp_g10.ts
f -i ramp_g10.mp4 -c copy -bsf:v h264_mp4toannexb ramp_g10.h264 # no timestamps at all
f -f lavfi -i "$(ramp 40 24 97x61)" -c:v libx264 -qp 2 -pix_fmt yuv444p -g 10 -x264-params $bfr ramp_odd.mp4
f -f lavfi -i "$(ramp 40 24 32x32)" -c:v mjpeg -q:v 1 ramp_mjpeg.avi # every frame a keyframe
f -f lavfi -i "$(ramp 40 24 97x61)" -c:v libvpx-vp9 -lossless 1 -g 10 -pix_fmt yuv420p ramp_odd_vp9.webm
# variable frame rate: 30 frames at 30 fps, then 30 frames at 10 fps, then 10 at 60 fps
f -f lavfi -i "$(ramp 70 30 96x64),setpts='if(lt(N,30),N/30,if(lt(N,60),1+(N-30)/10,4+(N-60)/60))/TB'" \
  -fps_mode passthrough -c:v libx264 -qp 2 -pix_fmt yuv420p -g 10 -x264-params $bfr -video_track_timescale 600 ramp_vfr.mp4
# real content, lossy, default x264 GOP structure: seek and forward paths must agree
f -f lavfi -i "testsrc2=s=160x96:r=30:d=4" -c:v libx264 -g 12 -pix_fmt yuv420p real_g12.mp4
f -f lavfi -i "testsrc2=s=160x96:r=30:d=4" -c:v libvpx-vp9 -g 12 -b:v 300k -pix_fmt yuv420p real_vp9.webm
# quadrants: top-left red, top-right green, bottom-left blue, bottom-right white
f -f lavfi -i "color=red:s=32x24[a];color=green:s=32x24[b];color=blue:s=32x24[c];color=white:s=32x24[d];[a][b]hstack[t];[c][d]hstack[u];[t][u]vstack,format=rgb24" -frames:v 1 quad.png
f -loop 1 -i quad.png -t 0.5 -r 10 -c:v libx264 -qp 0 -pix_fmt yuv444p quad.mp4
for r in 90 180 270; do f -i quad.mp4 -c copy -metadata:s:v:0 rotate=$r quad_rot$r.mp4; done
f -i quad.png -q:v 2 quad.jpg
f -i quad.png -c:v libwebp -lossless 1 quad.webp
# animated WebP (quad.png, then upside down; frames that differ, or the
# encoder writes a still): FFmpeg before 7.1 cannot decode it
f -loop 1 -i quad.png -vf "fps=5,trim=end_frame=2,vflip=enable='eq(n,1)'" -c:v libwebp_anim -lossless 1 -loop 0 anim.webp
# anamorphic: 48x48 pixels 4:3 wide each, shown 64x48 like quad.png
f -i quad.png -vf "scale=48:48,setsar=4/3" -c:v libx264 -qp 0 -pix_fmt yuv444p quad_sar.mp4
f -i quad.png -frames:v 1 -c:v libx264 -qp 0 -pix_fmt yuv444p one_frame.mp4
# wide 128x64 image: 32-px red band | grey 64x64 | 32-px blue band
f -f lavfi -i "color=red:s=32x64[a];color=gray:s=64x64[b];color=blue:s=32x64[c];[a][b][c]hstack=inputs=3,format=rgb24" -frames:v 1 wide.png
f -f lavfi -i "color=gray:s=32x96,format=rgb24" -frames:v 1 tall.png
# 8200x8200: over the sampler's 2^26 pixels
f -f lavfi -i "color=gray:s=8200x8200" -frames:v 1 huge.png
# not video
f -f lavfi -i "sine=d=1" -c:a aac audio.m4a
f -f lavfi -i "sine=d=1" audio.wav
printf ';FFMETADATA1\ntitle=nothing here\n' > nostream.mp4
: > empty.mp4
printf 'this is a text file, not a video\n' > text.mp4
mkdir -p adir.mp4
[ -p fifo.mp4 ] || mkfifo fifo.mp4 # no writer: opening it would wait forever
# lists naming themselves: must be refused, not followed forever
printf 'ffconcat version 1.0\nfile self_concat.mp4\n' > self_concat.mp4
printf '#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1000\nself.m3u8\n' > self.m3u8
# truncated: moov at the end (cut before it) and moov first (cut at 3/4 of the data)
size=$(wc -c < real_g12.mp4)
head -c $((size / 2)) real_g12.mp4 > trunc_moov_end.mp4
f -i real_g12.mp4 -c copy -movflags +faststart real_faststart.mp4
size=$(wc -c < real_faststart.mp4)
head -c $((size * 3 / 4)) real_faststart.mp4 > trunc_data.mp4
# PNG with its image data overwritten (signature and IHDR intact)
cp quad.png bad.png
size=$(wc -c < bad.png)
printf 'XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX' | dd of=bad.png bs=1 seek=$((size - 40)) conv=notrunc 2>/dev/null
# MP4 whose first sample size reads 0x3ffffff0 (bit rot): FFmpeg runs out of memory reading it
cp real_g12.mp4 bigsample.mp4
at=$(grep -obUa stsz bigsample.mp4 | head -n 1 | cut -d: -f1)
printf '\077\377\377\360' | dd of=bigsample.mp4 bs=1 seek=$((at + 16)) conv=notrunc 2>/dev/null
touch .done
