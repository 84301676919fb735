/* Frame sampler: which frames to decode and how (see frames.h). */
#include "frames.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

#include "frames_convert.h"
#include "ot_common.h"

struct ot_frames {
  ot_frames_opts o;
  unsigned no;      /* OT_FRAMES_NO_* */
  char *demuxers;   /* format whitelist: every demuxer but those opening other files */
  ot_fconv conv;
  AVPacket *pkt;               /* the packet read but not yet sent ("held") */
  AVFrame *recv, *pend, *cand; /* from the decoder / newest unclassified / answer so far */
};

/* Larger frames are refused (decode error): bounds memory per sampler. */
#define OT_FRAMES_MAX_PIXELS (1 << 26)

/* Decoding state of one item. Timestamps are in the stream's time base. */
typedef struct {
  ot_frames *f;
  ot_frames_stats *st;
  AVFormatContext *fc;
  AVCodecContext *dec;
  AVStream *vs;
  int si;
  int64_t start;        /* stream start, origin of targets and messages */
  int use_index;        /* keyframe index usable for seeking */
  int64_t read_max;     /* largest dts (pts if none) read since the last seek */
  int64_t sent_max_pts; /* largest pts sent to the decoder since the last seek */
  int from_start;       /* decoding began at the first keyframe: "first frame" rule */
  int just_seeked;      /* the next packet read is the keyframe we seeked to */
  int64_t seek_key;     /* index timestamp of the keyframe of the last seek */
  int64_t delay;        /* pts - dts of the first packet: index (dts) to seek (pts) time */
  int64_t floor_pts;    /* frames before the seek keyframe (open-GOP leading pictures) are dropped */
  int held;             /* f->pkt holds a packet read but not sent */
  int flushed;          /* flush packet sent: decoder drains, accepts no more packets */
  int drained_early;    /* flushed before the demuxer's end: the next target must seek */
  int dec_eof;          /* decoder fully drained */
  int read_err;         /* demuxer error that ended reading (0: none or plain EOF) */
  int dec_err;          /* last packet or frame the decoder refused since the seek (0: none) */
  int64_t dec_err_ts;   /* where it was */
  int recv_failed;      /* the last avcodec_receive_frame failed, nothing sent since */
  int pts_known;        /* every packet had a pts */
  int dts_known;        /* every packet had a dts, and dts <= pts */
  int have_cand, have_pend;
  int64_t cand_pts, pend_pts, last_pts;
  int64_t serial, cand_serial, pend_serial; /* frames out of the decoder, to spot repeats */
  int stream_rotation;                      /* -1: none in the container, ask each frame */
} item;

static double secs(const item *it, int64_t ts) {
  return ts == AV_NOPTS_VALUE ? 0.0 : (double)(ts - it->start) * av_q2d(it->vs->time_base);
}

/* FFmpeg's ENOMEM is the file's fault too: av_malloc refuses sizes over
 * INT_MAX, and a corrupt size field (a sample table claiming 2^30 entries,
 * a 3 GB packet) asks for one; a real shortage ends the process (overcommit)
 * long before. As the job's fault, the job would stop on that item at every
 * rerun and could never finish. */
static int av_fail(int averr, const char *what) {
  if (averr == AVERROR(ENOMEM))
    return ot_fail(OT_EMEDIA, "%s: out of memory (a size in the file too large?)", what);
  return ot_fail(OT_EMEDIA, "%s: %s", what, av_err2str(averr));
}

/* ---------------------------------------------------------------- open */

static int is_image_demuxer(const AVFormatContext *fc) {
  const char *n = fc->iformat->name;
  size_t len = strlen(n);
  return !strcmp(n, "image2") || (len > 5 && !strcmp(n + len - 5, "_pipe"));
}

/* Demuxers that open further files or URLs named inside the input
 * (playlists, concat lists): a file naming itself would recurse forever. */
static const char *const nested_demuxers[] = {"concat", "hls", "dash", "imf", NULL};

static char *demuxer_whitelist(void) {
  size_t len = 0, cap = 4096;
  char *list = ot_xmalloc(cap);
  list[0] = 0;
  void *opaque = NULL;
  const AVInputFormat *fmt;
  while ((fmt = av_demuxer_iterate(&opaque))) {
    int nested = 0;
    for (int i = 0; nested_demuxers[i]; i++) nested |= !strcmp(fmt->name, nested_demuxers[i]);
    if (nested) continue;
    size_t n = strlen(fmt->name);
    if (len + n + 2 > cap) list = ot_xrealloc(list, cap = 2 * (len + n + 2));
    if (len) list[len++] = ',';
    memcpy(list + len, fmt->name, n + 1);
    len += n;
  }
  return list;
}

static int pick_video_stream(AVFormatContext *fc) {
  int best = av_find_best_stream(fc, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
  if (best >= 0 && !(fc->streams[best]->disposition & AV_DISPOSITION_ATTACHED_PIC)) return best;
  for (unsigned i = 0; i < fc->nb_streams; i++) { /* cover art is not the video */
    const AVStream *s = fc->streams[i];
    if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
        !(s->disposition & AV_DISPOSITION_ATTACHED_PIC))
      return (int)i;
  }
  return -1;
}

static void close_item(item *it) {
  avcodec_free_context(&it->dec);
  avformat_close_input(&it->fc);
}

/* 1 if `path` is a WebP whose VP8X header sets the animation flag: FFmpeg's
 * webp decoder before 7.1 refuses such files with a bare "Invalid data". */
static int webp_is_animated(const char *path) {
  unsigned char h[21];
  FILE *fp = fopen(path, "rb");
  const int n = fp ? (int)fread(h, 1, sizeof h, fp) : 0;
  if (fp) fclose(fp);
  return n == (int)sizeof h && !memcmp(h, "RIFF", 4) && !memcmp(h + 8, "WEBPVP8X", 8) && (h[20] & 0x02);
}

/* Opens container and decoder. Only local files: "file:" stops a path with
 * a colon from naming a protocol, and the whitelist keeps playlists from
 * reaching the network. */
static int open_item(item *it, const char *path) {
  struct stat sb;
  if (stat(path, &sb) != 0) return ot_fail(OT_EMEDIA, "cannot open: %s", av_err2str(AVERROR(errno)));
  if (S_ISDIR(sb.st_mode)) return ot_fail(OT_EMEDIA, "cannot open: Is a directory");
  /* a FIFO would block the rank forever waiting for a writer, a device
   * stream without end */
  if (!S_ISREG(sb.st_mode)) return ot_fail(OT_EMEDIA, "cannot open: not a regular file");
  if (sb.st_size == 0) return ot_fail(OT_EMEDIA, "empty file");

  size_t n = strlen(path) + 6;
  char *url = ot_xmalloc(n);
  snprintf(url, n, "file:%s", path);
  AVDictionary *opt = NULL;
  av_dict_set(&opt, "protocol_whitelist", "file", 0);
  av_dict_set(&opt, "format_whitelist", it->f->demuxers, 0);
  av_dict_set(&opt, "pattern_type", "none", 0); /* image2: a '%' in a name is no sequence */
  int r = avformat_open_input(&it->fc, url, NULL, &opt);
  av_dict_free(&opt);
  free(url);
  if (r < 0) return av_fail(r, "cannot open");
  if ((r = avformat_find_stream_info(it->fc, NULL)) < 0) return av_fail(r, "cannot read streams");

  it->si = pick_video_stream(it->fc);
  if (it->si < 0)
    return ot_fail(OT_EMEDIA, "%s", it->fc->nb_streams ? "no video stream" : "no video stream (no streams at all)");
  it->vs = it->fc->streams[it->si];
  for (unsigned i = 0; i < it->fc->nb_streams; i++)
    if ((int)i != it->si) it->fc->streams[i]->discard = AVDISCARD_ALL;

  const AVCodecParameters *par = it->vs->codecpar;
  const AVCodec *codec = avcodec_find_decoder(par->codec_id);
  if (!codec) return ot_fail(OT_EMEDIA, "no decoder for %s", avcodec_get_name(par->codec_id));
  if (!(it->dec = avcodec_alloc_context3(codec))) return ot_fail(OT_ENOMEM, "out of memory");
  if ((r = avcodec_parameters_to_context(it->dec, par)) < 0) return av_fail(r, "cannot decode");
  it->dec->pkt_timebase = it->vs->time_base;
  it->dec->thread_count = it->f->o.threads;
  it->dec->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  it->dec->max_pixels = OT_FRAMES_MAX_PIXELS;
  /* avcodec_open2 refuses such a size with a bare "Invalid argument": say why */
  if ((int64_t)par->width * par->height > OT_FRAMES_MAX_PIXELS)
    return ot_fail(OT_EMEDIA, "frame %dx%d too large (over %d pixels)", par->width, par->height,
                   OT_FRAMES_MAX_PIXELS);
  if ((r = avcodec_open2(it->dec, codec, NULL)) < 0) {
    char what[64];
    snprintf(what, sizeof what, "cannot decode %s", codec->name);
    return av_fail(r, what);
  }
  size_t sz = 0;
  const uint8_t *m = av_stream_get_side_data(it->vs, AV_PKT_DATA_DISPLAYMATRIX, &sz);
  it->stream_rotation = (m && sz >= 9 * sizeof(int32_t)) ? ot_fconv_rotation((const int32_t *)m) : -1;
  return OT_OK;
}

/* Reads the video packets from here to the end of the file, no decoding:
 * their count, and the smallest timestamp and largest timestamp + duration
 * (INT64_MAX / INT64_MIN when none has a timestamp), `no_dur` standing for
 * the duration of a packet that states none. Leaves the demuxer at the end. */
static int scan_packets(item *it, int64_t no_dur, int64_t *lo, int64_t *hi, int64_t *n) {
  AVPacket *pkt = it->f->pkt;
  *lo = INT64_MAX, *hi = INT64_MIN, *n = 0;
  int r;
  while ((r = av_read_frame(it->fc, pkt)) >= 0) {
    if (pkt->stream_index == it->si) {
      ++*n;
      int64_t ts = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (ts != AV_NOPTS_VALUE) {
        if (ts < *lo) *lo = ts;
        const int64_t end = ts + (pkt->duration > 0 ? pkt->duration : no_dur);
        if (end > *hi) *hi = end;
      }
    }
    av_packet_unref(pkt);
  }
  return r == AVERROR(ENOMEM) ? av_fail(r, "reading") : OT_OK;
}

/* Stream start and duration when neither stream nor container states one
 * (or only guesses it from the bit rate): read every packet.
 * Without any timestamps (raw elementary streams) frame k shows at k and
 * the duration is the frame count. Leaves the demuxer at the end. */
static int scan_duration(item *it, int64_t *start, int64_t *dur) {
  int64_t lo, hi, n;
  int r = scan_packets(it, 0, &lo, &hi, &n);
  if (r) return r;
  *start = lo == INT64_MAX ? 0 : lo;
  *dur = lo == INT64_MAX ? n : hi - lo;
  return OT_OK;
}

/* A duration taken from the container spans every stream: with audio that
 * outlasts the video, targets past the video's end would all get its last
 * frame. The video's own end is read from its last indexed keyframe to the
 * end of the file (a GOP, not the file), and *dur shortened to it; then the
 * demuxer is back at the start. */
static int trim_to_video_end(item *it, int64_t start, int64_t *dur) {
  const AVIndexEntry *last = avformat_index_get_entry(it->vs, avformat_index_get_entries_count(it->vs) - 1);
  int r = av_seek_frame(it->fc, it->si, last->timestamp, AVSEEK_FLAG_BACKWARD);
  /* Matroska blocks often state no duration: the last frame lasts a frame */
  const AVRational fps = av_guess_frame_rate(it->fc, it->vs, NULL);
  const int64_t frame = fps.num > 0 && fps.den > 0 ? av_rescale_q(1, av_inv_q(fps), it->vs->time_base) : 0;
  int64_t lo = INT64_MAX, hi = INT64_MIN, n;
  if (r >= 0 && (r = scan_packets(it, frame, &lo, &hi, &n))) return r;
  if (lo != INT64_MAX && hi > start && hi - start < *dur) *dur = hi - start;
  if ((r = av_seek_frame(it->fc, it->si, start, AVSEEK_FLAG_BACKWARD)) < 0) return av_fail(r, "cannot seek");
  return OT_OK;
}

/* Stream duration from the container's, for streams that state none (the
 * stream's start in its time base). The container's span ends at its start
 * + duration, except in Matroska/WebM: there Duration ends a timeline that
 * starts at 0, and FFmpeg passes it on as is. A file whose timestamps start
 * later (a segment cut with -c copy, -copyts, -output_ts_offset) would
 * otherwise get targets past its end and repeat its last frame. <= 0 when
 * the container says nothing usable: the caller measures. */
static int64_t container_span(const item *it, int64_t start) {
  const AVFormatContext *fc = it->fc;
  int64_t end = fc->duration;
  if (!strstr(fc->iformat->name, "matroska") && fc->start_time != AV_NOPTS_VALUE) end += fc->start_time;
  return av_rescale_q(end, AV_TIME_BASE_Q, it->vs->time_base) - start;
}

/* ------------------------------------------------------- decode control */

static void drop_frames(item *it) {
  av_frame_unref(it->f->pend);
  av_frame_unref(it->f->cand);
  it->have_pend = it->have_cand = 0;
}

/* Seek to the keyframe whose index timestamp is key and reset decoding
 * state. Demuxers seek by presentation time while an index may hold decode
 * times (mov), hence the delay. */
static int seek_to(item *it, int64_t key) {
  avcodec_flush_buffers(it->dec);
  if (it->held) av_packet_unref(it->f->pkt);
  int r = av_seek_frame(it->fc, it->si, key + it->delay, AVSEEK_FLAG_BACKWARD);
  if (r < 0) {
    char what[64];
    snprintf(what, sizeof what, "seek failed at %.2fs", secs(it, key));
    return av_fail(r, what);
  }
  it->st->seeks++;
  drop_frames(it);
  it->held = it->flushed = it->drained_early = it->dec_eof = 0;
  it->read_err = it->dec_err = it->recv_failed = 0;
  it->read_max = key;
  it->sent_max_pts = INT64_MIN;
  it->floor_pts = INT64_MIN;
  it->just_seeked = 1;
  it->seek_key = key;
  it->from_start = !avformat_index_get_entry_from_timestamp(it->vs, key - 1, AVSEEK_FLAG_BACKWARD);
  return OT_OK;
}

/* Index entry of the last keyframe shown at or before t (the first keyframe
 * if none). */
static const AVIndexEntry *key_before(const item *it, int64_t t) {
  const AVIndexEntry *e =
      avformat_index_get_entry_from_timestamp(it->vs, t - it->delay, AVSEEK_FLAG_BACKWARD);
  return e ? e : avformat_index_get_entry_from_timestamp(it->vs, INT64_MIN, 0);
}

/* Index timestamp of the keyframe to seek to for target t, or INT64_MIN
 * when decoding forward decodes no more frames (that keyframe has already
 * been read). */
static int64_t seek_target(const item *it, int64_t t) {
  if (!it->use_index) return INT64_MIN;
  const AVIndexEntry *e = key_before(it, t);
  if (!e) return INT64_MIN;
  if (it->drained_early || e->timestamp > it->read_max) return e->timestamp;
  return INT64_MIN;
}

/* The keyframe we landed on shows after the target: go one keyframe back. */
static int step_back(item *it) {
  const AVIndexEntry *e =
      avformat_index_get_entry_from_timestamp(it->vs, it->seek_key - 1, AVSEEK_FLAG_BACKWARD);
  if (!e) e = avformat_index_get_entry_from_timestamp(it->vs, INT64_MIN, 0);
  if (!e || e->timestamp >= it->seek_key) return ot_fail(OT_EMEDIA, "broken keyframe index");
  return seek_to(it, e->timestamp);
}

/* Next packet of the video stream into f->pkt (held). After a seek, packets
 * before the first keyframe are dropped. Returns 0 or an AVERROR. */
static int read_packet(item *it) {
  AVPacket *pkt = it->f->pkt;
  for (;;) {
    int r = av_read_frame(it->fc, pkt);
    if (r < 0) return r;
    if (pkt->stream_index != it->si) { av_packet_unref(pkt); continue; }
    if (it->just_seeked) {
      if (!(pkt->flags & AV_PKT_FLAG_KEY)) { av_packet_unref(pkt); continue; }
      if (pkt->pts != AV_NOPTS_VALUE) it->floor_pts = pkt->pts;
    }
    if (pkt->pts == AV_NOPTS_VALUE) it->pts_known = 0;
    if (pkt->dts == AV_NOPTS_VALUE || pkt->dts > pkt->pts) it->dts_known = 0;
    int64_t ts = pkt->dts != AV_NOPTS_VALUE ? pkt->dts : pkt->pts;
    if (ts != AV_NOPTS_VALUE && ts > it->read_max) it->read_max = ts;
    it->held = 1;
    return 0;
  }
}

/* A frame from the decoder becomes the pending frame. */
static void take_frame(item *it) {
  AVFrame *fr = it->f->recv;
  it->st->decoded++;
  int64_t pts = fr->best_effort_timestamp;
  if (pts == AV_NOPTS_VALUE) pts = fr->pts;
  if (pts == AV_NOPTS_VALUE) pts = it->last_pts == AV_NOPTS_VALUE ? 0 : it->last_pts + 1;
  if (pts < it->floor_pts) { av_frame_unref(fr); return; } /* leading picture of an open GOP */
  it->last_pts = pts;
  av_frame_move_ref(it->f->pend, fr);
  it->have_pend = 1;
  it->pend_pts = pts;
  it->pend_serial = ++it->serial;
}

static void pend_to_cand(item *it) {
  av_frame_unref(it->f->cand);
  av_frame_move_ref(it->f->cand, it->f->pend);
  it->have_cand = 1;
  it->have_pend = 0;
  it->cand_pts = it->pend_pts;
  it->cand_serial = it->pend_serial;
}

static int send_flush(item *it) {
  int r = avcodec_send_packet(it->dec, NULL);
  if (r < 0 && r != AVERROR_EOF) return av_fail(r, "decode error at end");
  it->flushed = 1;
  return OT_OK;
}

/* av_fail for the decoder's error `averr` at stream time ts. */
static int decode_fail(const item *it, int averr, int64_t ts) {
  /* the header is read on this failure path only; the url is "file:PATH" */
  if (it->vs->codecpar->codec_id == AV_CODEC_ID_WEBP && webp_is_animated(it->fc->url + strlen("file:")))
    return ot_fail(OT_EMEDIA, "animated WebP, which this FFmpeg (%s) cannot decode (%s): convert it to GIF, "
                   "APNG or a video first", av_version_info(), av_err2str(averr));
  char what[64];
  snprintf(what, sizeof what, "decode error at %.2fs", secs(it, ts));
  return av_fail(averr, what);
}

/* A packet or frame the decoder refused (a damaged slice, bit rot) is
 * skipped, as players and the ffmpeg CLI do: one bad packet in a long video
 * does not lose the item, and a target whose frame is damaged gets the last
 * good one before it. The error is reported only if no frame is left for a
 * target. */
static void note_damage(item *it, int averr, int64_t ts) {
  it->dec_err = averr;
  it->dec_err_ts = ts;
  it->st->damaged++;
}

/* Make f->cand the frame for target t: the last frame with pts <= t (the
 * first frame if none). has_next/t_next: the following target, used to
 * decide whether draining the decoder now is safe. */
static int find_frame(item *it, int64_t t, int has_next, int64_t t_next) {
  ot_frames *f = it->f;
  int64_t ts = seek_target(it, t);
  if (ts != INT64_MIN) {
    int r = seek_to(it, ts);
    if (r) return r;
  }
  /* best: largest pts <= t among packets sent since the seek; known while
   * packets have a pts and every packet sent before this target showed at
   * or before t. Then a packet showing before best is no answer (skippable
   * if no frame refers to it), and once a packet's dts passes t (all later
   * ones show after t) the frame showing at best is the answer. */
  int best_ok = it->sent_max_pts <= t;
  int64_t best = it->sent_max_pts;
  int read_done = 0; /* a packet with dts > t was read: none to come shows at or before t */
  for (;;) {
    best_ok = best_ok && it->pts_known;
    if (it->have_cand && it->cand_pts > t) return OT_OK; /* first frame, still ahead of t */
    if (it->have_pend) {
      if (it->pend_pts <= t || (!it->have_cand && it->from_start)) {
        pend_to_cand(it);
      } else if (it->have_cand) {
        return OT_OK; /* a later frame showed: cand is the last one <= t */
      } else {
        int r = step_back(it);
        if (r) return r;
        best_ok = 1, best = INT64_MIN, read_done = 0;
      }
      continue;
    }
    if (best_ok && read_done && it->have_cand && it->cand_pts >= best) return OT_OK;

    if (it->dec_eof) {
      if (it->have_cand) return OT_OK;
      if (it->read_err) {
        char what[64];
        snprintf(what, sizeof what, "read error at %.2fs", secs(it, it->read_max));
        return av_fail(it->read_err, what);
      }
      if (it->dec_err && !it->from_start) { /* damaged from the keyframe on: one keyframe back */
        int r = step_back(it);
        if (r) return r;
        best_ok = 1, best = INT64_MIN, read_done = 0;
        continue;
      }
      if (it->dec_err) return decode_fail(it, it->dec_err, it->dec_err_ts);
      if (!it->from_start)
        return ot_fail(OT_EMEDIA, "truncated file: no data at %.2fs", secs(it, it->seek_key + it->delay));
      return ot_fail(OT_EMEDIA, "no decodable video frames");
    }
    int r = avcodec_receive_frame(it->dec, f->recv);
    if (r >= 0) { it->recv_failed = 0; take_frame(it); continue; }
    if (r == AVERROR_EOF) { it->dec_eof = 1; continue; }
    if (r != AVERROR(EAGAIN)) {
      /* (a frame-threaded decoder reports a damaged packet here); twice in
         a row with nothing sent between: the decoder is stuck, give up */
      if (r == AVERROR(ENOMEM) || it->recv_failed) return decode_fail(it, r, it->last_pts);
      it->recv_failed = 1;
      note_damage(it, r, it->last_pts);
      continue;
    }
    if (it->flushed) { it->dec_eof = 1; continue; } /* EAGAIN after flush: nothing more */

    if (!it->held) {
      r = read_packet(it);
      if (r == AVERROR(ENOMEM)) return av_fail(r, "reading");
      if (r < 0) { /* end of data (or unreadable rest): decode what exists */
        if (r != AVERROR_EOF) it->read_err = r;
        if ((r = send_flush(it))) return r;
        read_done = 1;
        continue;
      }
      if (it->just_seeked) {
        it->just_seeked = 0;
        if (!it->from_start && it->floor_pts != INT64_MIN && it->floor_pts > t) {
          if ((r = step_back(it))) return r;
          best_ok = 1, best = INT64_MIN, read_done = 0;
          continue;
        }
      }
    }
    AVPacket *pkt = f->pkt;
    best_ok = best_ok && it->pts_known; /* read_packet may have just cleared it */
    if (best_ok && it->dts_known && pkt->dts > t) {
      read_done = 1;
      if (!(f->no & OT_FRAMES_NO_DRAIN) && (!has_next || seek_target(it, t_next) != INT64_MIN)) {
        /* the answer is in the decoder and the next target seeks anyway:
           drain instead of decoding packets that serve no target */
        if ((r = send_flush(it))) return r;
        it->drained_early = 1;
        continue;
      }
    }
    int skip = !(f->no & OT_FRAMES_NO_SKIP) && best_ok && pkt->pts < best;
    it->dec->skip_frame = skip ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
    r = avcodec_send_packet(it->dec, pkt);
    if (r == AVERROR(EAGAIN)) continue;
    it->recv_failed = 0;
    if (r < 0) {
      const int64_t at = pkt->pts != AV_NOPTS_VALUE ? pkt->pts : pkt->dts;
      if (r == AVERROR(ENOMEM)) return decode_fail(it, r, at);
      note_damage(it, r, at); /* consumed: the error is the decoding's */
      av_packet_unref(pkt);
      it->held = 0;
      continue;
    }
    it->st->packets++;
    it->st->skippable += skip;
    if (pkt->pts != AV_NOPTS_VALUE) {
      if (pkt->pts <= t && pkt->pts > best) best = pkt->pts;
      if (pkt->pts > it->sent_max_pts) it->sent_max_pts = pkt->pts;
    }
    av_packet_unref(pkt);
    it->held = 0;
  }
}

/* ---------------------------------------------------------------- public */

int ot_frames_open(ot_frames **out, const ot_frames_opts *o) {
  *out = NULL;
  if (o->frames < 1 || o->height < 1 || o->width < 1 || o->threads < 1 ||
      (o->resize != OT_RESIZE_CROP && o->resize != OT_RESIZE_LETTERBOX))
    return ot_fail(OT_EINVAL, "frames: bad options (frames=%d, size=%dx%d, threads=%d, resize=%d)",
                   o->frames, o->width, o->height, o->threads, (int)o->resize);
  if ((int64_t)o->height * o->width > (1 << 26))
    return ot_fail(OT_EINVAL, "frames: output %dx%d too large", o->width, o->height);
  if (av_log_get_level() == AV_LOG_INFO) av_log_set_level(AV_LOG_FATAL);
  ot_frames *f = ot_xcalloc(1, sizeof *f);
  f->o = *o;
  f->demuxers = demuxer_whitelist();
  int r = ot_fconv_init(&f->conv, o->height, o->width, o->resize);
  f->pkt = av_packet_alloc();
  f->recv = av_frame_alloc();
  f->pend = av_frame_alloc();
  f->cand = av_frame_alloc();
  if (!r && (!f->pkt || !f->recv || !f->pend || !f->cand)) r = ot_fail(OT_ENOMEM, "out of memory");
  if (r) {
    ot_frames_close(f);
    return r;
  }
  *out = f;
  return OT_OK;
}

void ot_frames_close(ot_frames *f) {
  if (!f) return;
  ot_fconv_free(&f->conv);
  av_packet_free(&f->pkt);
  av_frame_free(&f->recv);
  av_frame_free(&f->pend);
  av_frame_free(&f->cand);
  free(f->demuxers);
  free(f);
}

void ot_frames_set_tuning(ot_frames *f, unsigned no_flags) { f->no = no_flags; }

static int sample_item(item *it, const char *path, uint8_t *out) {
  ot_frames *f = it->f;
  int r = open_item(it, path);
  if (r) return r;
  int still = is_image_demuxer(it->fc) || it->vs->nb_frames == 1;
  int64_t start = it->vs->start_time != AV_NOPTS_VALUE ? it->vs->start_time : 0;
  int64_t dur = it->vs->duration;
  const int from_container = !still && dur <= 0 && it->fc->duration > 0;
  if (from_container) dur = container_span(it, start);
  if (it->fc->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE) dur = 0; /* a guess */
  if (!still && dur <= 0) { /* unknown: measure, then start over */
    if ((r = scan_duration(it, &start, &dur))) return r;
    close_item(it);
    if ((r = open_item(it, path))) return r;
  }
  if (still || dur < 0) dur = 0;
  it->start = start;
  if (!still && !(f->no & OT_FRAMES_NO_SEEK) && strstr(it->fc->iformat->name, "matroska") &&
      it->fc->pb && (it->fc->pb->seekable & AVIO_SEEKABLE_NORMAL)) {
    /* Matroska reads its index (cues) on the first seek, and until then
       lists only the keyframes it has met: seek to the start now. */
    if ((r = av_seek_frame(it->fc, it->si, start, AVSEEK_FLAG_BACKWARD)) < 0) return av_fail(r, "cannot seek");
  }
  it->use_index = !(f->no & OT_FRAMES_NO_SEEK) && !still &&
                  avformat_index_get_entries_count(it->vs) > 0 && it->fc->pb &&
                  (it->fc->pb->seekable & AVIO_SEEKABLE_NORMAL);
  if (it->use_index && from_container && dur > 0 && it->fc->nb_streams > 1 &&
      (r = trim_to_video_end(it, start, &dur)))
    return r;
  /* we are at the stream start: no seek for a target whose keyframe is the first */
  it->read_max = it->use_index ? avformat_index_get_entry(it->vs, 0)->timestamp : INT64_MIN;
  if (it->use_index) { /* peek at the first packet for the dts -> pts delay */
    r = read_packet(it);
    if (r == AVERROR(ENOMEM)) return av_fail(r, "reading");
    if (r < 0) it->use_index = 0; /* find_frame meets the end again and reports */
    AVPacket *p = f->pkt;
    if (!r && p->pts != AV_NOPTS_VALUE && p->dts != AV_NOPTS_VALUE && p->pts > p->dts)
      it->delay = p->pts - p->dts;
  }

  const int T = f->o.frames;
  const size_t fsz = (size_t)f->o.height * f->o.width * 3;
  int64_t done_serial = -1;
  for (int i = 0; i < T; i++) {
    int64_t t = start + av_rescale_rnd(dur, 2 * i + 1, 2 * (int64_t)T, AV_ROUND_DOWN);
    int64_t tn = start + av_rescale_rnd(dur, 2 * i + 3, 2 * (int64_t)T, AV_ROUND_DOWN);
    if ((r = find_frame(it, t, i + 1 < T, tn))) return r;
    uint8_t *dst = out + (size_t)i * fsz;
    if (it->cand_serial == done_serial) { /* same frame as the previous target */
      memcpy(dst, dst - fsz, fsz);
      continue;
    }
    int rot = it->stream_rotation;
    if (rot < 0) {
      const AVFrameSideData *sd = av_frame_get_side_data(f->cand, AV_FRAME_DATA_DISPLAYMATRIX);
      rot = (sd && sd->size >= 9 * sizeof(int32_t)) ? ot_fconv_rotation((const int32_t *)sd->data) : 0;
    }
    if ((r = ot_fconv_run(&f->conv, f->cand, rot, dst))) return r;
    done_serial = it->cand_serial;
    it->st->rotation = rot;
    it->st->width = f->cand->width;
    it->st->height = f->cand->height;
  }
  /* a "video" that turned out to hold one frame is a still */
  if (!still && it->from_start && it->dec_eof && !it->drained_early && it->serial == 1) still = 1;
  it->st->is_still = still;
  it->st->duration = still ? 0.0 : (double)dur * av_q2d(it->vs->time_base);
  return OT_OK;
}

int ot_frames_sample(ot_frames *f, const char *path, uint8_t *out, ot_frames_stats *stats) {
  ot_frames_stats local;
  item it;
  memset(&it, 0, sizeof it);
  it.f = f;
  it.st = stats ? stats : &local;
  memset(it.st, 0, sizeof *it.st);
  it.si = -1;
  it.from_start = 1;
  it.pts_known = it.dts_known = 1;
  it.sent_max_pts = INT64_MIN;
  it.floor_pts = INT64_MIN;
  it.last_pts = AV_NOPTS_VALUE;
  it.cand_serial = it.pend_serial = -1;
  int r = sample_item(&it, path, out);
  if (it.held) av_packet_unref(f->pkt);
  drop_frames(&it);
  av_frame_unref(f->recv);
  close_item(&it);
  return r;
}
