/* Frame -> RGB24 H×W: crop or letterbox geometry, libswscale, turn. */
#include "frames_convert.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/display.h>
#include <libavutil/rational.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include "ot_common.h"

/* Bilinear in libswscale widens its kernel with the reduction factor, so a
 * 1280→64 downscale averages properly; full chroma and accurate rounding
 * keep colours of small outputs right. */
#define OT_SWS_FLAGS (SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT)

int ot_fconv_init(ot_fconv *c, int height, int width, ot_resize_mode resize) {
  memset(c, 0, sizeof *c);
  c->height = height;
  c->width = width;
  c->resize = resize;
  c->turn = malloc((size_t)height * width * 3);
  if (!c->turn) return ot_fail(OT_ENOMEM, "out of memory for a %dx%d frame", width, height);
  return OT_OK;
}

void ot_fconv_free(ot_fconv *c) {
  sws_freeContext(c->sws);
  free(c->turn);
  memset(c, 0, sizeof *c);
}

int ot_fconv_rotation(const int32_t *m) {
  if (!m) return 0;
  double ccw = av_display_rotation_get(m);
  if (isnan(ccw)) return 0;
  double cw = fmod(-ccw, 360.0);
  if (cw < 0) cw += 360.0;
  long q = lround(cw / 90.0);
  if (fabs(cw - 90.0 * q) > 1.0) return 0;
  return (int)(q % 4) * 90;
}

/* The J formats only say "full range"; swscale wants the plain format plus
 * the range flag (and warns about the J ones). */
static enum AVPixelFormat plain_format(enum AVPixelFormat f, int *full) {
  switch (f) {
    case AV_PIX_FMT_YUVJ420P: *full = 1; return AV_PIX_FMT_YUV420P;
    case AV_PIX_FMT_YUVJ422P: *full = 1; return AV_PIX_FMT_YUV422P;
    case AV_PIX_FMT_YUVJ444P: *full = 1; return AV_PIX_FMT_YUV444P;
    case AV_PIX_FMT_YUVJ440P: *full = 1; return AV_PIX_FMT_YUV440P;
    case AV_PIX_FMT_YUVJ411P: *full = 1; return AV_PIX_FMT_YUV411P;
    default: return f;
  }
}

static int rounded_ratio(int64_t a, int64_t b, int64_t c) { /* round(a*b/c), >= 1 */
  int64_t v = (2 * a * b + c) / (2 * c);
  return v < 1 ? 1 : (int)v;
}

/* Point src[] at (x, y) of every plane of fr; x and y are multiples of the
 * chroma subsampling (and of 8 for bit-packed formats). */
static void crop_planes(const AVFrame *fr, const AVPixFmtDescriptor *d, int x, int y,
                        const uint8_t *src[4]) {
  for (int p = 0; p < 4; p++) src[p] = fr->data[p];
  if (d->flags & AV_PIX_FMT_FLAG_PAL) { /* plane 1 is the palette */
    src[0] += (ptrdiff_t)y * fr->linesize[0] + x;
    return;
  }
  int done[4] = {0};
  for (int i = 0; i < d->nb_components; i++) {
    const AVComponentDescriptor *cd = &d->comp[i];
    if (done[cd->plane]) continue;
    done[cd->plane] = 1;
    int chroma = (i == 1 || i == 2);
    int px = chroma ? x >> d->log2_chroma_w : x;
    int py = chroma ? y >> d->log2_chroma_h : y;
    ptrdiff_t bx = (d->flags & AV_PIX_FMT_FLAG_BITSTREAM) ? (ptrdiff_t)px * cd->step / 8
                                                          : (ptrdiff_t)px * cd->step;
    src[cd->plane] += (ptrdiff_t)py * fr->linesize[cd->plane] + bx;
  }
}

/* out (h rows × w cols) = in turned clockwise by deg; in has the swapped
 * shape for 90/270. */
static void turn_rgb(uint8_t *out, const uint8_t *in, int h, int w, int deg) {
  int ih = (deg == 180) ? h : w, iw = (deg == 180) ? w : h;
  for (int r = 0; r < h; r++) {
    for (int c = 0; c < w; c++) {
      int sr, sc;
      if (deg == 90) { sr = ih - 1 - c; sc = r; }
      else if (deg == 270) { sr = c; sc = iw - 1 - r; }
      else { sr = ih - 1 - r; sc = iw - 1 - c; }
      memcpy(out + ((size_t)r * w + c) * 3, in + ((size_t)sr * iw + sc) * 3, 3);
    }
  }
}

int ot_fconv_run(ot_fconv *c, const AVFrame *fr, int rotation, uint8_t *out) {
  const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fr->format);
  if (!d || (d->flags & AV_PIX_FMT_FLAG_HWACCEL) || fr->width <= 0 || fr->height <= 0)
    return ot_fail(OT_EMEDIA, "unsupported frame (%dx%d, format %d)", fr->width, fr->height,
                   fr->format);
  int full = fr->color_range == AVCOL_RANGE_JPEG;
  enum AVPixelFormat fmt = plain_format(fr->format, &full);
  int sw = fr->width, sh = fr->height;
  int sideways = (rotation == 90 || rotation == 270);
  int tw = sideways ? c->height : c->width, th = sideways ? c->width : c->height;
  uint8_t *img = rotation ? c->turn : out;

  /* Geometry in displayed proportions: pixels of anamorphic video (DVD,
   * HDV 1440x1080, broadcast) are not square, and their sample aspect ratio
   * a:b says how wide one is; unknown (0) or square changes nothing. */
  int a = 1, b = 1;
  if (fr->sample_aspect_ratio.num > 0 && fr->sample_aspect_ratio.den > 0)
    av_reduce(&a, &b, fr->sample_aspect_ratio.num, fr->sample_aspect_ratio.den, 1 << 16);
  const int64_t sw_a = (int64_t)sw * a, sh_b = (int64_t)sh * b; /* displayed width : height */

  int cx = 0, cy = 0, cw = sw, ch = sh; /* source region */
  int dx = 0, dy = 0, dw = tw, dh = th; /* destination region */
  if (c->resize == OT_RESIZE_CROP) {
    if (sw_a * th > sh_b * tw) cw = rounded_ratio(sh_b, tw, (int64_t)th * a);
    else ch = rounded_ratio(sw_a, th, (int64_t)tw * b);
    if (cw > sw) cw = sw;
    if (ch > sh) ch = sh;
    int ax = (1 << d->log2_chroma_w) - 1, ay = (1 << d->log2_chroma_h) - 1;
    if (d->flags & AV_PIX_FMT_FLAG_BITSTREAM) ax = 7;
    cx = ((sw - cw) / 2) & ~ax;
    cy = ((sh - ch) / 2) & ~ay;
  } else {
    if (sw_a * th > sh_b * tw) dh = rounded_ratio(sh_b, tw, sw_a);
    else dw = rounded_ratio(sw_a, th, sh_b);
    if (dw > tw) dw = tw;
    if (dh > th) dh = th;
    dx = (tw - dw) / 2;
    dy = (th - dh) / 2;
    if (dw < tw || dh < th) memset(img, 0, (size_t)tw * th * 3);
  }

  c->sws = sws_getCachedContext(c->sws, cw, ch, fmt, dw, dh, AV_PIX_FMT_RGB24, OT_SWS_FLAGS,
                                NULL, NULL, NULL);
  if (!c->sws)
    return ot_fail(OT_EMEDIA, "cannot convert %dx%d %s to RGB", cw, ch, av_get_pix_fmt_name(fmt));
  /* Colour matrix from the frame (BT.601 when unspecified), like the scale
   * filter; returns an error for RGB sources, which need none. */
  sws_setColorspaceDetails(c->sws, sws_getCoefficients(fr->colorspace), full,
                           sws_getCoefficients(SWS_CS_DEFAULT), 0, 0, 1 << 16, 1 << 16);

  const uint8_t *src[4];
  crop_planes(fr, d, cx, cy, src);
  uint8_t *dst[4] = {img + ((size_t)dy * tw + dx) * 3, NULL, NULL, NULL};
  int dst_stride[4] = {tw * 3, 0, 0, 0};
  if (sws_scale(c->sws, src, fr->linesize, 0, ch, dst, dst_stride) != dh)
    return ot_fail(OT_EMEDIA, "cannot scale %dx%d %s", cw, ch, av_get_pix_fmt_name(fmt));
  if (rotation) turn_rgb(out, c->turn, c->height, c->width, rotation);
  return OT_OK;
}
