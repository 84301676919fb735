/* Frame sampler: decode a video or still image with FFmpeg and return T
 * frames uniformly spread over its duration, as RGB24 [T][H][W][3].
 *
 * Which frames (exact, for any keyframe layout, thread count or run):
 *   - Video of stream duration D starting at `start` (stream time-base
 *     ticks): targets t_i = start + floor((2i+1)·D / 2T), i = 0..T-1, i.e.
 *     (i+0.5)·D/T. The frame for t_i is the last frame in presentation
 *     order whose pts <= t_i, or the first frame if there is none.
 *     D is the stream's duration, else the container's (Matroska: its
 *     Duration, the end of a timeline from 0, less the start), else (also when
 *     only guessed from the bit rate) measured by reading all packets.
 *     Streams without timestamps (raw H.264 ...): frame k shows at k and D
 *     is the frame count.
 *   - Stills (image files, or a video holding one frame) repeat their frame
 *     T times, so every item is [T,H,W,3].
 *   - Rotation metadata (display matrix) is applied: output is upright.
 *   - Resize with libswscale (bilinear, accurate rounding, full chroma):
 *     OT_RESIZE_CROP crops the centre to the output aspect then scales;
 *     OT_RESIZE_LETTERBOX scales to fit and fills the bars with black;
 *     both in displayed proportions (non-square pixels: sample aspect ratio).
 *
 * How (cost): per target, seek to the keyframe before it when one lies
 * beyond what has been read, otherwise decode forward (the stream index
 * tells where keyframes are; without an index: one forward pass). While
 * decoding toward a target, non-reference frames that cannot be the answer
 * are not decoded (AVDISCARD_NONREF), and once packet timestamps prove the
 * answer is in the decoder it is drained instead of decoding further.
 * Memory: a few frames, whatever the video length.
 *
 * Damage: a packet the decoder refuses is skipped (stats.damaged), as players
 * do: a target whose frame is damaged gets the last good frame before it.
 *
 * Errors: bad media never aborts; OT_EMEDIA with ot_errmsg() a short reason
 * ("empty file", "cannot open: ...", "no video stream", "decode error at
 * 3.20s: ...", "truncated file: no data at 7.00s", ...). FFmpeg's own log is
 * lowered to AV_LOG_FATAL by ot_frames_open if the program left it at the
 * default level. */
#ifndef OT_FRAMES_H
#define OT_FRAMES_H

#include <stdint.h>

typedef enum { OT_RESIZE_CROP = 0, OT_RESIZE_LETTERBOX = 1 } ot_resize_mode;

typedef struct {
  int frames;            /* T: frames sampled per item (>=1) */
  int height, width;     /* output size */
  ot_resize_mode resize; /* center-crop to aspect then scale, or letterbox (black bars) */
  int threads;           /* decoder threads (libavcodec's own), >=1 */
} ot_frames_opts;

typedef struct {
  int64_t decoded;   /* frames decoded (returned by the decoder) for this item */
  int seeks;         /* seeks performed */
  double duration;   /* seconds, 0 for stills */
  int is_still;      /* 1 if image / single frame */
  int64_t packets;   /* packets given to the decoder */
  int64_t skippable; /* of those, sent with AVDISCARD_NONREF (dropped if non-reference) */
  int width, height; /* decoded frame size (before rotation) */
  int rotation;      /* clockwise degrees applied: 0, 90, 180 or 270 */
  int64_t damaged;   /* packets or frames the decoder refused, skipped */
} ot_frames_stats;

typedef struct ot_frames ot_frames;

/* Allocates a reusable sampler (scaler cache, frame buffers) into *out; the
 * caller frees it with ot_frames_close. OT_EINVAL on bad options. One
 * sampler per thread. */
int ot_frames_open(ot_frames **out, const ot_frames_opts *opts);

/* Decode `path` and write T frames, RGB24, into out[T][H][W][3] (caller-owned,
 * T*H*W*3 bytes). Returns OT_OK, OT_EMEDIA with ot_errmsg() giving a short
 * reason (also when FFmpeg runs out of memory on it: see av_fail), or
 * OT_ENOMEM when the sampler's own buffers cannot be had. stats may be NULL. */
int ot_frames_sample(ot_frames *f, const char *path, uint8_t *out, ot_frames_stats *stats);

void ot_frames_close(ot_frames *f); /* accepts NULL */

/* For tests and benchmarks only: turn decoding shortcuts off (the output
 * must not change). Default 0 = all on. */
enum {
  OT_FRAMES_NO_SEEK = 1,  /* one forward pass, never seek */
  OT_FRAMES_NO_SKIP = 2,  /* decode every frame, no AVDISCARD_NONREF */
  OT_FRAMES_NO_DRAIN = 4, /* decode on until a later frame shows up */
};
void ot_frames_set_tuning(ot_frames *f, unsigned no_flags);

#endif
