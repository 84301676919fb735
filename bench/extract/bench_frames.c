/* Drives ot_frames_sample over files, one thread: per file one line
 *   <path> <status> <wall s> <cpu s> <decoded> <seeks> <packets> <skippable>
 * then "peak_rss_kb <n>". With -o DIR writes DIR/<i>.rgb (T*H*W*3 bytes)
 * per file so outputs can be compared with the ffmpeg CLI's.
 * Usage: bench_frames [-T 8] [-H 64] [-W 64] [-j threads] [-l] [-n no_flags]
 *                     [-o DIR] file... */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "frames.h"
#include "ot_common.h"

static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  ot_frames_opts o = {.frames = 8, .height = 64, .width = 64, .resize = OT_RESIZE_CROP, .threads = 1};
  unsigned no = 0;
  const char *outdir = NULL;
  int c;
  while ((c = getopt(argc, argv, "T:H:W:j:ln:o:")) != -1) {
    switch (c) {
      case 'T': o.frames = atoi(optarg); break;
      case 'H': o.height = atoi(optarg); break;
      case 'W': o.width = atoi(optarg); break;
      case 'j': o.threads = atoi(optarg); break;
      case 'l': o.resize = OT_RESIZE_LETTERBOX; break;
      case 'n': no = (unsigned)strtoul(optarg, NULL, 0); break;
      case 'o': outdir = optarg; break;
      default: fprintf(stderr, "usage: %s [-T n] [-H h] [-W w] [-j threads] [-l] [-n flags] [-o dir] file...\n", argv[0]); return 2;
    }
  }
  ot_frames *f;
  if (ot_frames_open(&f, &o)) {
    fprintf(stderr, "bench_frames: %s\n", ot_errmsg());
    return 2;
  }
  ot_frames_set_tuning(f, no);
  size_t sz = (size_t)o.frames * o.height * o.width * 3;
  uint8_t *buf = malloc(sz);
  if (!buf) return 1;
  int failed = 0;
  for (int i = optind; i < argc; i++) {
    ot_frames_stats st;
    double t0 = ot_now(), c0 = cpu_now();
    int r = ot_frames_sample(f, argv[i], buf, &st);
    double dt = ot_now() - t0, dc = cpu_now() - c0;
    printf("%s %s %.6f %.6f %lld %d %lld %lld\n", argv[i], r ? "FAIL" : "OK", dt, dc, (long long)st.decoded,
           st.seeks, (long long)st.packets, (long long)st.skippable);
    if (r) {
      printf("#   %s\n", ot_errmsg());
      failed = 1;
      continue;
    }
    if (outdir) {
      char p[4096];
      snprintf(p, sizeof p, "%s/%d.rgb", outdir, i - optind);
      FILE *fo = fopen(p, "wb");
      if (!fo || fwrite(buf, 1, sz, fo) != sz || fclose(fo)) {
        fprintf(stderr, "bench_frames: cannot write %s\n", p);
        return 1;
      }
    }
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("peak_rss_kb %ld\n", ru.ru_maxrss);
  free(buf);
  ot_frames_close(f);
  return failed;
}
