/* Private to ot_frames: one decoded frame -> upright RGB24 H×W (crop or
 * letterbox, libswscale, then a 90/180/270° turn on the small image). */
#ifndef OT_FRAMES_CONVERT_H
#define OT_FRAMES_CONVERT_H

#include <stdint.h>
#include <libavutil/frame.h>
#include "frames.h"

typedef struct {
  struct SwsContext *sws; /* cached across frames and items */
  uint8_t *turn;          /* H*W*3 image before the turn */
  int height, width;      /* output size */
  ot_resize_mode resize;
} ot_fconv;

/* Sets up c for H×W outputs (allocates c->turn; free with ot_fconv_free).
 * OT_ENOMEM on failure. */
int ot_fconv_init(ot_fconv *c, int height, int width, ot_resize_mode resize);
void ot_fconv_free(ot_fconv *c);

/* Clockwise degrees (0/90/180/270) that make a frame carrying display
 * matrix m upright, as the ffmpeg CLI's autorotate does; 0 for NULL or an
 * angle that is not a multiple of 90°. */
int ot_fconv_rotation(const int32_t *m);

/* Writes fr, turned clockwise by `rotation` degrees, into out[H][W][3].
 * OT_EMEDIA for a pixel format or size libswscale refuses. */
int ot_fconv_run(ot_fconv *c, const AVFrame *fr, int rotation, uint8_t *out);

#endif
