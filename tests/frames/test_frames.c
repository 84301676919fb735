/* Frame sampler tests on media made by gen_media.sh.
 * Usage: test_frames MEDIA_DIR CASE   (CASE: select modes threads rotate
 * resize stills errors reuse damage). Exit 0 when every check of the case holds. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libavformat/avformat.h>

#include "frames.h"
#include "ot_common.h"

static const char *dir;
static int failures;

#define CHECK(c, ...)                                                   \
  do {                                                                  \
    if (!(c)) {                                                         \
      failures++;                                                       \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #c);     \
      fprintf(stderr, __VA_ARGS__);                                     \
      fprintf(stderr, "\n");                                            \
    }                                                                   \
  } while (0)

static char *media(const char *name) {
  static char buf[4][4096];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

/* Samples `name`; returns a malloc'd [T][H][W][3] buffer or NULL (status in *st_out). */
static uint8_t *sample(const char *name, int T, int H, int W, ot_resize_mode mode, int threads,
                       unsigned no, ot_frames_stats *stats, int *status) {
  ot_frames_opts o = {.frames = T, .height = H, .width = W, .resize = mode, .threads = threads};
  ot_frames *f;
  int r = ot_frames_open(&f, &o);
  if (r) {
    fprintf(stderr, "open: %s\n", ot_errmsg());
    exit(1);
  }
  ot_frames_set_tuning(f, no);
  uint8_t *out = malloc((size_t)T * H * W * 3);
  r = ot_frames_sample(f, media(name), out, stats);
  ot_frames_close(f);
  if (status) *status = r;
  if (r) {
    if (!status) fprintf(stderr, "%s: %s\n", name, ot_errmsg());
    free(out);
    return NULL;
  }
  return out;
}

/* ------------------------------------------------------------- select */

/* Presentation timestamps of every video packet, sorted: frame k of the
 * ramp is the k-th. Plus the stream's start and duration, as frames.h
 * defines the targets. Independent of the sampler: demuxing only. */
static int64_t *ground_truth(const char *name, int *n, int64_t *start, int64_t *dur) {
  AVFormatContext *fc = NULL;
  if (avformat_open_input(&fc, media(name), NULL, NULL) < 0 || avformat_find_stream_info(fc, NULL) < 0)
    return NULL;
  int si = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
  AVStream *st = fc->streams[si];
  *start = st->start_time == AV_NOPTS_VALUE ? 0 : st->start_time;
  *dur = st->duration > 0 ? st->duration : av_rescale_q(fc->duration, AV_TIME_BASE_Q, st->time_base);
  int cap = 1024, stamped = 0;
  int64_t *pts = malloc(cap * sizeof *pts);
  *n = 0;
  AVPacket *p = av_packet_alloc();
  while (av_read_frame(fc, p) >= 0) {
    if (p->stream_index == si && *n < cap) pts[(*n)++] = p->pts;
    stamped += p->pts != AV_NOPTS_VALUE;
    av_packet_unref(p);
  }
  if (!stamped) { /* raw stream: frame k shows at k, D = frame count */
    for (int k = 0; k < *n; k++) pts[k] = k;
    *start = 0;
    *dur = *n;
  }
  av_packet_free(&p);
  avformat_close_input(&fc);
  for (int i = 1; i < *n; i++) /* insertion sort: decode -> display order */
    for (int j = i; j > 0 && pts[j - 1] > pts[j]; j--) {
      int64_t x = pts[j];
      pts[j] = pts[j - 1];
      pts[j - 1] = x;
    }
  return pts;
}

/* Ramp frame k is flat grey with luma 16+3k, i.e. RGB 3k·255/219. Returns k,
 * or -1 if the image is not a flat ramp grey. */
static int ramp_index(const uint8_t *img, int H, int W) {
  int v = img[((H / 2) * W + W / 2) * 3];
  double step = 3.0 * 255.0 / 219.0;
  int k = (int)lround(v / step);
  if (fabs(v - k * step) > 1.2) return -1;
  for (int i = 0; i < H * W * 3; i++)
    if (abs(img[i] - v) > 2) return -1;
  return k;
}

static void check_selection(const char *name, int T, unsigned no) {
  int n;
  int64_t start, dur;
  int64_t *pts = ground_truth(name, &n, &start, &dur);
  CHECK(pts && n > 1, "%s: no packets", name);
  if (!pts) return;
  const int H = 24, W = 32;
  ot_frames_stats st;
  uint8_t *out = sample(name, T, H, W, OT_RESIZE_CROP, 1, no, &st, NULL);
  CHECK(out, "%s T=%d: sampling failed", name, T);
  if (out) {
    for (int i = 0; i < T; i++) {
      int64_t t = start + av_rescale_rnd(dur, 2 * i + 1, 2 * (int64_t)T, AV_ROUND_DOWN);
      int want = 0;
      for (int k = 0; k < n; k++)
        if (pts[k] <= t) want = k;
      int got = ramp_index(out + (size_t)i * H * W * 3, H, W);
      CHECK(got == want, "%s T=%d no=%u: target %d (t=%lld) got frame %d, want %d", name, T, no, i,
            (long long)t, got, want);
    }
    CHECK(!st.is_still && st.duration > 0, "%s: still=%d duration=%g", name, st.is_still, st.duration);
  }
  free(out);
  free(pts);
}

static void case_select(void) {
  const char *files[] = {"ramp_g10.mp4",  "ramp_g30.mp4",      "ramp_g300.mp4",
                         "ramp_10bit.mp4", "ramp_vp9.webm",    "ramp_vp9_10bit.webm",
                         "ramp_odd.mp4",  "ramp_odd_vp9.webm", "ramp_vfr.mp4",
                         "ramp_g10.mkv",  "ramp_g10.ts",      "ramp_g10.h264"};
  const int Ts[] = {1, 3, 8, 13, 100};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++)
    for (size_t j = 0; j < sizeof Ts / sizeof *Ts; j++) check_selection(files[i], Ts[j], 0);
  /* a Matroska file starting late: its frames spread over its 3 s like
     those of the same stream starting at 0, not over 4.5 s (Duration is the
     end of its timeline) with the last frame repeated */
  for (size_t j = 0; j < sizeof Ts / sizeof *Ts; j++) {
    const int T = Ts[j], H = 8, W = 8;
    uint8_t *a = sample("ramp_g10.mkv", T, H, W, OT_RESIZE_CROP, 1, 0, NULL, NULL);
    uint8_t *b = sample("ramp_off.mkv", T, H, W, OT_RESIZE_CROP, 1, 0, NULL, NULL);
    CHECK(a && b, "ramp_g10.mkv / ramp_off.mkv T=%d: sampling failed", T);
    for (int i = 0; a && b && i < T; i++) {
      int ka = ramp_index(a + (size_t)i * H * W * 3, H, W), kb = ramp_index(b + (size_t)i * H * W * 3, H, W);
      CHECK(ka == kb, "ramp_off.mkv T=%d: target %d got frame %d, from start 0 frame %d", T, i, kb, ka);
    }
    free(a);
    free(b);
  }
  /* a Matroska file whose audio (4 s) outlasts its video (3 s): Duration is
     the audio's end; the frames must spread over the video's span (first
     frame to the end of its last), not with the last frame repeated */
  int n;
  int64_t start, dur;
  int64_t *pts = ground_truth("ramp_audio.mkv", &n, &start, &dur);
  CHECK(pts && n == 72, "ramp_audio.mkv: %d video packets", pts ? n : -1);
  for (size_t j = 0; pts && n == 72 && j < sizeof Ts / sizeof *Ts; j++) {
    const int T = Ts[j], H = 8, W = 8;
    const int64_t span = pts[n - 1] + (pts[n - 1] - pts[n - 2]) - start;
    uint8_t *o = sample("ramp_audio.mkv", T, H, W, OT_RESIZE_CROP, 1, 0, NULL, NULL);
    CHECK(o, "ramp_audio.mkv T=%d: sampling failed", T);
    for (int i = 0; o && i < T; i++) {
      const int64_t t = start + av_rescale_rnd(span, 2 * i + 1, 2 * (int64_t)T, AV_ROUND_DOWN);
      int want = 0;
      for (int k = 0; k < n; k++)
        if (pts[k] <= t) want = k;
      const int got = ramp_index(o + (size_t)i * H * W * 3, H, W);
      CHECK(got == want, "ramp_audio.mkv T=%d: target %d got frame %d, want %d (video span %lld)", T, i, got,
            want, (long long)span);
    }
    free(o);
  }
  free(pts);
  /* every shortcut off must pick the same frames */
  check_selection("ramp_g10.mp4", 8, OT_FRAMES_NO_SEEK | OT_FRAMES_NO_SKIP | OT_FRAMES_NO_DRAIN);
  check_selection("ramp_vfr.mp4", 13, OT_FRAMES_NO_SEEK);
  /* keyframe layout decides the path: many seeks with -g 10, none with -g 300 */
  ot_frames_stats a, b;
  free(sample("ramp_g10.mp4", 8, 16, 16, OT_RESIZE_CROP, 1, 0, &a, NULL));
  free(sample("ramp_g300.mp4", 8, 16, 16, OT_RESIZE_CROP, 1, 0, &b, NULL));
  CHECK(a.seeks >= 3, "g10 seeks %d", a.seeks);
  CHECK(b.seeks == 0, "g300 seeks %d", b.seeks);
}

/* -------------------------------------------------------------- modes */

static void case_modes(void) {
  const char *files[] = {"real_g12.mp4", "real_vp9.webm", "ramp_vfr.mp4"};
  const unsigned modes[] = {OT_FRAMES_NO_SEEK, OT_FRAMES_NO_SKIP, OT_FRAMES_NO_DRAIN,
                            OT_FRAMES_NO_SEEK | OT_FRAMES_NO_SKIP | OT_FRAMES_NO_DRAIN};
  const int T = 8, H = 40, W = 56;
  const size_t sz = (size_t)T * H * W * 3;
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    ot_frames_stats ref_st, st;
    uint8_t *ref = sample(files[i], T, H, W, OT_RESIZE_CROP, 1, 0, &ref_st, NULL);
    CHECK(ref, "%s failed", files[i]);
    if (!ref) continue;
    for (size_t m = 0; m < sizeof modes / sizeof *modes; m++) {
      uint8_t *o = sample(files[i], T, H, W, OT_RESIZE_CROP, 1, modes[m], &st, NULL);
      CHECK(o && !memcmp(o, ref, sz), "%s: output with no_flags=%u differs", files[i], modes[m]);
      if (modes[m] & OT_FRAMES_NO_SEEK) CHECK(st.seeks == 0, "%s: %d seeks", files[i], st.seeks);
      if (m == 3)
        CHECK(st.decoded > ref_st.decoded, "%s: shortcuts decode %lld frames, plain %lld", files[i],
              (long long)ref_st.decoded, (long long)st.decoded);
      free(o);
    }
    free(ref);
  }
  ot_frames_stats st;
  free(sample("real_g12.mp4", 8, 8, 8, OT_RESIZE_CROP, 1, 0, &st, NULL));
  CHECK(st.seeks > 0 && st.skippable > 0, "real_g12: seeks %d skippable %lld", st.seeks,
        (long long)st.skippable);
}

/* ------------------------------------------------------------ threads */

static void case_threads(void) {
  const char *files[] = {"real_g12.mp4", "real_vp9.webm", "ramp_10bit.mp4"};
  const int T = 8, H = 32, W = 32;
  const size_t sz = (size_t)T * H * W * 3;
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    uint8_t *ref = sample(files[i], T, H, W, OT_RESIZE_CROP, 1, 0, NULL, NULL);
    CHECK(ref, "%s failed", files[i]);
    if (!ref) continue;
    const int threads[] = {1, 2, 3};
    for (int k = 0; k < 3; k++) {
      uint8_t *o = sample(files[i], T, H, W, OT_RESIZE_CROP, threads[k], 0, NULL, NULL);
      CHECK(o && !memcmp(o, ref, sz), "%s: threads=%d output differs", files[i], threads[k]);
      free(o);
    }
    free(ref);
  }
}

/* ------------------------------------------------------------- rotate */

enum { RED, GREEN, BLUE, WHITE, BLACK, GREY };
static const int palette[][3] = {{255, 0, 0}, {0, 128, 0}, {0, 0, 255}, {255, 255, 255}, {0, 0, 0}, {128, 128, 128}};
static const char *cname[] = {"red", "green", "blue", "white", "black", "grey"};

static int colour_at(const uint8_t *img, int W, int x, int y) {
  const uint8_t *p = img + ((size_t)y * W + x) * 3;
  int best = -1, bd = 1 << 30;
  for (int c = 0; c < 6; c++) {
    int d = 0;
    for (int k = 0; k < 3; k++) d += (p[k] - palette[c][k]) * (p[k] - palette[c][k]);
    if (d < bd) bd = d, best = c;
  }
  return bd < 40 * 40 ? best : -1;
}

static int all_colour(const uint8_t *img, int W, int x0, int y0, int x1, int y1, int c) {
  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++)
      if (colour_at(img, W, x, y) != c) return 0;
  return 1;
}

static void check_corners(const char *name, const uint8_t *img, int H, int W, const int want[4]) {
  int got[4] = {colour_at(img, W, 1, 1), colour_at(img, W, W - 2, 1), colour_at(img, W, 1, H - 2),
                colour_at(img, W, W - 2, H - 2)};
  for (int k = 0; k < 4; k++)
    CHECK(got[k] == want[k], "%s: corner %d is %s, want %s", name, k, got[k] < 0 ? "?" : cname[got[k]],
          cname[want[k]]);
}

static void case_rotate(void) {
  /* corners TL, TR, BL, BR as the ffmpeg CLI shows them (autorotate) */
  struct { const char *file; int rot; int want[4]; } c[] = {
      {"quad.mp4", 0, {RED, GREEN, BLUE, WHITE}},
      {"quad_rot90.mp4", 270, {GREEN, WHITE, RED, BLUE}},
      {"quad_rot180.mp4", 180, {WHITE, BLUE, GREEN, RED}},
      {"quad_rot270.mp4", 90, {BLUE, RED, WHITE, GREEN}},
  };
  const int H = 30, W = 44;
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    for (int mode = 0; mode < 2; mode++) {
      ot_frames_stats st;
      uint8_t *o = sample(c[i].file, 2, H, W, (ot_resize_mode)mode, 1, 0, &st, NULL);
      CHECK(o, "%s failed", c[i].file);
      if (!o) continue;
      CHECK(st.rotation == c[i].rot, "%s: rotation %d, want %d", c[i].file, st.rotation, c[i].rot);
      if (mode == OT_RESIZE_CROP) {
        check_corners(c[i].file, o, H, W, c[i].want);
      } else { /* letterbox: the turned 64x48 or 48x64 picture is 40 or 23 px wide, bars beside it */
        int pw = (c[i].rot == 90 || c[i].rot == 270) ? 23 : 40;
        int got = colour_at(o, W, W / 2 - pw / 4, H / 4);
        CHECK(got == c[i].want[0], "%s letterbox: top-left of picture is %d", c[i].file, got);
        CHECK(all_colour(o, W, 0, 0, (W - pw) / 2, H, BLACK), "%s letterbox: left bar", c[i].file);
        CHECK(all_colour(o, W, W - (W - pw) / 2, 0, W, H, BLACK), "%s letterbox: right bar", c[i].file);
      }
      free(o);
    }
  }
}

/* ------------------------------------------------------------- resize */

static void case_resize(void) {
  /* wide.png 128x64: red band | grey 64x64 | blue band */
  uint8_t *o = sample("wide.png", 2, 64, 64, OT_RESIZE_CROP, 1, 0, NULL, NULL);
  CHECK(o && all_colour(o, 64, 0, 0, 64, 64, GREY), "crop of wide.png is not the grey centre");
  free(o);
  o = sample("wide.png", 1, 64, 64, OT_RESIZE_LETTERBOX, 1, 0, NULL, NULL);
  CHECK(o, "letterbox wide.png failed");
  if (o) {
    for (int i = 0; i < 16 * 64 * 3; i++) CHECK(o[i] == 0 && o[48 * 64 * 3 + i] == 0, "bar byte %d", i);
    CHECK(all_colour(o, 64, 17, 16, 47, 48, GREY), "letterbox centre not grey");
    CHECK(all_colour(o, 64, 0, 16, 14, 48, RED), "letterbox left band not red");
    CHECK(all_colour(o, 64, 50, 16, 64, 48, BLUE), "letterbox right band not blue");
  }
  free(o);
  /* tall.png 32x96 grey: bars left and right */
  o = sample("tall.png", 1, 64, 64, OT_RESIZE_LETTERBOX, 1, 0, NULL, NULL);
  CHECK(o, "letterbox tall.png failed");
  if (o) {
    CHECK(all_colour(o, 64, 0, 0, 21, 64, BLACK), "left bar");
    CHECK(all_colour(o, 64, 43, 0, 64, 64, BLACK), "right bar");
    CHECK(all_colour(o, 64, 23, 0, 41, 64, GREY), "centre");
  }
  free(o);
  /* anamorphic quad_sar.mp4 (48x48, pixels 4:3) shows 64x48: it fills a
     4:3 letterbox with no bars, and a 4:3 crop keeps all of it */
  for (int mode = 0; mode < 2; mode++) {
    const int want[4] = {RED, GREEN, BLUE, WHITE};
    o = sample("quad_sar.mp4", 1, 30, 40, (ot_resize_mode)mode, 1, 0, NULL, NULL);
    CHECK(o, "quad_sar.mp4 failed");
    if (o) check_corners(mode ? "quad_sar.mp4 letterbox" : "quad_sar.mp4 crop", o, 30, 40, want);
    free(o);
  }
  /* odd source size, odd output size, both modes */
  for (int mode = 0; mode < 2; mode++) {
    ot_frames_stats st;
    o = sample("ramp_odd_vp9.webm", 3, 13, 7, (ot_resize_mode)mode, 1, 0, &st, NULL);
    CHECK(o && st.width == 97 && st.height == 61, "odd size: %dx%d", st.width, st.height);
    free(o);
  }
}

/* ------------------------------------------------------------- stills */

static void case_stills(void) {
  const char *files[] = {"quad.png", "quad.jpg", "quad.webp", "one_frame.mp4"};
  const int T = 5, H = 24, W = 32;
  const size_t fsz = (size_t)H * W * 3;
  const int want[4] = {RED, GREEN, BLUE, WHITE};
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    ot_frames_stats st;
    uint8_t *o = sample(files[i], T, H, W, OT_RESIZE_CROP, 1, 0, &st, NULL);
    CHECK(o, "%s failed", files[i]);
    if (!o) continue;
    CHECK(st.is_still == 1 && st.duration == 0.0, "%s: still=%d duration=%g", files[i], st.is_still,
          st.duration);
    for (int t = 1; t < T; t++) CHECK(!memcmp(o, o + t * fsz, fsz), "%s: frame %d differs", files[i], t);
    check_corners(files[i], o, H, W, want);
    free(o);
  }
}

/* ------------------------------------------------------------- errors */

static void case_errors(void) {
  struct { const char *file; const char *reason; } c[] = {
      {"audio.m4a", "no video stream"},     {"audio.wav", "no video stream"},
      {"nostream.mp4", "no video stream"},  {"empty.mp4", "empty file"},
      {"text.mp4", "cannot open"},          {"adir.mp4", "cannot open: Is a directory"},
      {"does-not-exist.mp4", "cannot open: No such file or directory"},
      {"trunc_moov_end.mp4", "cannot open"}, {"bad.png", "decode error"},
      {"trunc_data.mp4", "truncated"},      {"self_concat.mp4", "cannot open"},
      {"self.m3u8", "cannot open"},         {"huge.png", "frame 8200x8200 too large"},
      {"bigsample.mp4", "out of memory"}, /* the file's fault: ot-extract would stop at every rerun */
      {"fifo.mp4", "not a regular file"},
  };
  for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
    int r;
    uint8_t *o = sample(c[i].file, 4, 8, 8, OT_RESIZE_CROP, 2, 0, NULL, &r);
    CHECK(!o && r == OT_EMEDIA && strstr(ot_errmsg(), c[i].reason), "%s: status %d, message '%s', want '%s'",
          c[i].file, r, ot_errmsg(), c[i].reason);
    free(o);
  }
  /* An animated WebP: Debian 12's FFmpeg (5.1) cannot decode one; the record
   * must say that rather than "Invalid data found when processing input".
   * (An FFmpeg that decodes it passes.) */
  {
    int r;
    uint8_t *o = sample("anim.webp", 2, 24, 32, OT_RESIZE_CROP, 1, 0, NULL, &r);
    if (!o)
      CHECK(r == OT_EMEDIA && strstr(ot_errmsg(), "animated WebP, which this FFmpeg (") &&
                strstr(ot_errmsg(), "convert it to GIF, APNG or a video first"),
            "anim.webp: status %d, message '%s'", r, ot_errmsg());
    free(o);
  }
  /* a truncated file still yields the frames that exist */
  int n;
  int64_t s, d;
  free(ground_truth("trunc_data.mp4", &n, &s, &d));
  uint8_t *o = sample("trunc_data.mp4", 1, 8, 8, OT_RESIZE_CROP, 1, 0, NULL, NULL);
  CHECK(o, "trunc_data.mp4 T=1 (target inside the data) failed");
  free(o);
  ot_frames *f;
  ot_frames_opts bad = {.frames = 0, .height = 8, .width = 8, .threads = 1};
  CHECK(ot_frames_open(&f, &bad) == OT_EINVAL, "frames=0 accepted");
  ot_frames_close(NULL);
}

/* ------------------------------------------------------------- damage */

/* Copies `name` to `copy` with bytes [skip, skip+len) of the packet showing
 * `frame` set to 0xff (an H.264 NAL size, JPEG tables the decoder refuses). */
static int damage_frame(const char *name, int frame, const char *copy, int skip, int len) {
  AVFormatContext *fc = NULL;
  if (avformat_open_input(&fc, media(name), NULL, NULL) < 0) return -1;
  int64_t pts[1024], pos[1024];
  int n = 0;
  AVPacket *p = av_packet_alloc();
  while (av_read_frame(fc, p) >= 0 && n < 1024) {
    if (p->stream_index == 0) pts[n] = p->pts, pos[n++] = p->pos;
    av_packet_unref(p);
  }
  av_packet_free(&p);
  avformat_close_input(&fc);
  int64_t at = -1;
  for (int i = 0; i < n; i++) { /* the packet whose pts ranks `frame` */
    int below = 0;
    for (int j = 0; j < n; j++) below += pts[j] < pts[i];
    if (below == frame) at = pos[i];
  }
  FILE *in = fopen(media(name), "rb"), *out = fopen(media(copy), "wb");
  if (at < 0 || !in || !out) return -1;
  int c;
  for (int64_t k = 0; (c = fgetc(in)) != EOF; k++) fputc(k >= at + skip && k < at + skip + len ? 0xff : c, out);
  fclose(in);
  fclose(out);
  return 0;
}

static void case_damage(void) {
  /* one damaged packet (frame 55 of 72, GOP 50-59) must not lose the video:
   * it is skipped, and every target outside its GOP gets the same frame as
   * from the intact file, on both paths (seek, one forward pass) */
  CHECK(damage_frame("ramp_g10.mp4", 55, "damaged55.mp4", 0, 4) == 0, "cannot make damaged55.mp4");
  const int T = 8, H = 16, W = 16;
  const unsigned modes[] = {0, OT_FRAMES_NO_SEEK | OT_FRAMES_NO_SKIP | OT_FRAMES_NO_DRAIN};
  for (int m = 0; m < 2; m++) {
    ot_frames_stats st;
    uint8_t *good = sample("ramp_g10.mp4", T, H, W, OT_RESIZE_CROP, 1, modes[m], NULL, NULL);
    int r;
    uint8_t *o = sample("damaged55.mp4", T, H, W, OT_RESIZE_CROP, 1, modes[m], &st, &r);
    CHECK(o && st.damaged >= 1, "damaged55.mp4 no=%u: status %d (%s), %lld damaged", modes[m], r,
          r ? ot_errmsg() : "", (long long)st.damaged);
    for (int i = 0; o && good && i < T; i++) {
      int kg = ramp_index(good + (size_t)i * H * W * 3, H, W), kd = ramp_index(o + (size_t)i * H * W * 3, H, W);
      if (kg < 50 || kg > 59) CHECK(kd == kg, "damaged55.mp4 no=%u: target %d got frame %d, intact %d", modes[m], i, kd, kg);
    }
    free(good);
    free(o);
  }
  /* a damaged frame that is a target's answer (every frame a keyframe):
   * the last good frame before it */
  CHECK(damage_frame("ramp_mjpeg.avi", 22, "damaged22.avi", 2, 200) == 0, "cannot make damaged22.avi");
  for (int m = 0; m < 2; m++) {
    int r;
    uint8_t *o = sample("damaged22.avi", 8, H, W, OT_RESIZE_CROP, 1, modes[m], NULL, &r); /* target 4: frame 22 */
    CHECK(o, "damaged22.avi no=%u: status %d (%s)", modes[m], r, r ? ot_errmsg() : "");
    int k = o ? ramp_index(o + (size_t)4 * H * W * 3, H, W) : -2;
    CHECK(!o || k == 21, "damaged22.avi no=%u: target 4 got frame %d, want 21", modes[m], k);
    free(o);
  }
}

/* -------------------------------------------------------------- reuse */

static void case_reuse(void) {
  /* one sampler over good and bad items: results equal fresh samplers' */
  const char *files[] = {"real_g12.mp4", "bad.png", "ramp_vfr.mp4", "empty.mp4", "quad_rot90.mp4",
                         "trunc_data.mp4", "real_vp9.webm", "real_g12.mp4"};
  const int T = 6, H = 20, W = 28;
  const size_t sz = (size_t)T * H * W * 3;
  ot_frames_opts o = {.frames = T, .height = H, .width = W, .resize = OT_RESIZE_LETTERBOX, .threads = 2};
  ot_frames *f;
  CHECK(ot_frames_open(&f, &o) == OT_OK, "open");
  uint8_t *buf = malloc(sz);
  for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
    int r = ot_frames_sample(f, media(files[i]), buf, NULL);
    int r2;
    uint8_t *fresh = sample(files[i], T, H, W, OT_RESIZE_LETTERBOX, 2, 0, NULL, &r2);
    CHECK(r == r2, "%s: reused status %d, fresh %d", files[i], r, r2);
    if (!r && fresh) CHECK(!memcmp(buf, fresh, sz), "%s: reused sampler output differs", files[i]);
    free(fresh);
  }
  free(buf);
  ot_frames_close(f);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s MEDIA_DIR CASE\n", argv[0]);
    return 2;
  }
  dir = argv[1];
  const char *c = argv[2];
  if (!strcmp(c, "select")) case_select();
  else if (!strcmp(c, "modes")) case_modes();
  else if (!strcmp(c, "threads")) case_threads();
  else if (!strcmp(c, "rotate")) case_rotate();
  else if (!strcmp(c, "resize")) case_resize();
  else if (!strcmp(c, "stills")) case_stills();
  else if (!strcmp(c, "errors")) case_errors();
  else if (!strcmp(c, "reuse")) case_reuse();
  else if (!strcmp(c, "damage")) case_damage();
  else {
    fprintf(stderr, "unknown case %s\n", c);
    return 2;
  }
  if (failures) fprintf(stderr, "%d check(s) failed\n", failures);
  return failures ? 1 : 0;
}
