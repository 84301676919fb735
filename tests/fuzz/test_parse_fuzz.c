/* The parsers of user-written input — manifest lines and files, YAML
 * configs and their --set items, job files, predictions files — fed
 * mutations of valid inputs: flipped and inserted bytes, JSON/YAML tokens
 * spliced in, ranges cut, repeated or truncated, NUL bytes in files. Each
 * call must return OT_OK or an input error with a message, never crash, and
 * a manifest's blocks must hold exactly its lines; the sanitizer build (CI
 * runs this test under ASan + UBSan) turns any out-of-bounds read, leak or
 * undefined behaviour on these paths into a failure. Deterministic: a fixed seed, so a failure
 * reproduces with the same command.
 *
 *   test_parse_fuzz SOURCE_DIR WORK_DIR [rounds per seed input [seed]] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ot_common.h"
#include "ot_config.h"
#include "ot_fs.h"
#include "ot_manifest.h"
#include "../../stages/eval/evalset.h"
#include "../../stages/run/ot_job.h"
#include "ot_test.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void) { /* xorshift64* */
  rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
  return rng * 2685821657736338717ull;
}
static size_t below(size_t n) { return n ? (size_t)(next() % n) : 0; }

/* Tokens that steer the parsers into their less travelled branches. */
static const char *const tokens[] = {
    "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u0000", "\\ud800", "\\uDFFF", "\\n", "null", "true",
    "1e999", "-0", "9223372036854775808", "\xff", "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xef\xbb\xbf",
    "\t", "\n", "\r\n", " ", "- ", "? ", "&a ", "*a", "!!str ", "|", ">", "#", "---", "...", "%YAML 1.1\n",
    "=", ".", "''", "~", "{}", "[]", "\"\"", "0x10", "nan", "inf", "-1", "1e-400"};

/* One to four stacked edits of `in` (n bytes) into out (NUL-terminated,
 * at most cap - 1 bytes). Returns the length. */
static size_t mutate(const char *in, size_t n, char *out, size_t cap) {
  OT_ASSERT(n < cap);
  memcpy(out, in, n);
  const int edits = 1 + (int)below(4);
  for (int e = 0; e < edits; e++) {
    const size_t pos = below(n + 1);
    switch (below(6)) {
    case 0: /* a byte set to anything but NUL (the C-string parsers end there) */
      if (n) out[below(n)] = (char)(1 + below(255));
      break;
    case 1: { /* a token inserted */
      const char *t = tokens[below(sizeof tokens / sizeof *tokens)];
      const size_t k = strlen(t);
      if (n + k >= cap) break;
      memmove(out + pos + k, out + pos, n - pos);
      memcpy(out + pos, t, k);
      n += k;
      break;
    }
    case 2: { /* a range cut */
      const size_t k = below(n - pos + 1);
      memmove(out + pos, out + pos + k, n - pos - k);
      n -= k;
      break;
    }
    case 3: { /* a range repeated in place */
      const size_t k = below(n - pos + 1) % 64;
      if (n + k >= cap) break;
      memmove(out + pos + k, out + pos, n - pos);
      n += k;
      break;
    }
    case 4: /* truncated */
      n = pos;
      break;
    default: { /* a run of one byte (deep nesting, long keys) */
      const size_t k = 1 + below(300);
      if (n + k >= cap) break;
      const char c = "{[\"-a 9"[below(7)];
      memmove(out + pos + k, out + pos, n - pos);
      memset(out + pos, c, k);
      n += k;
      break;
    }
    }
  }
  out[n] = '\0';
  return n;
}

/* Per parser: calls and inputs accepted (one that accepts no input is not
 * explored past its first check). */
enum { MAX_TARGETS = 16 };
static struct {
  const char *what;
  long calls, accepted;
} counts[MAX_TARGETS];

static void count(const char *what, int ok) {
  int t = 0;
  while (t < MAX_TARGETS && counts[t].what && strcmp(counts[t].what, what)) t++;
  OT_ASSERT(t < MAX_TARGETS);
  counts[t].what = what, counts[t].calls++, counts[t].accepted += ok;
}

/* An error must be one of the input errors and say what was wrong. */
static void check_status(int st, const char *what, const char *input) {
  count(what, st == OT_OK);
  if (st == OT_OK) return;
  const char *msg = ot_errmsg();
  CHECKF((st == OT_EINVAL || st == OT_EIO) && msg && msg[0], "%s: status %d (%s) for input:\n%s", what, st,
         msg ? msg : "(no message)", input);
}

static void write_file(const char *path, const char *text, size_t n) {
  FILE *f = fopen(path, "wb");
  OT_ASSERT(f && fwrite(text, 1, n, f) == n && fclose(f) == 0);
}

enum { CAP = 1 << 16 };

static void fuzz_manifest(int rounds) {
  static const char *const seeds[] = {
      "{\"id\": \"a1\", \"path\": \"v/a1.mp4\", \"title\": \"Cat on a mat\", \"tags\": [\"cat\", \"mat\"], "
      "\"group\": \"g1\"}",
      "{\"id\":\"z\",\"path\":\"\\u732b.png\",\"title\":\"\xe7\x8c\xab\xe5\x92\xaa\",\"tags\":[]}",
      "{\"id\": \"7\", \"path\": \"x.webm\", \"extra\": {\"k\": [1, 2.5e3, null]}}",
  };
  static char buf[CAP];
  for (size_t s = 0; s < sizeof seeds / sizeof *seeds; s++)
    for (int r = 0; r < rounds; r++) {
      mutate(seeds[s], strlen(seeds[s]), buf, sizeof buf);
      ot_item item;
      const int st = ot_manifest_parse_line(buf, 12, &item);
      check_status(st, "manifest line", buf);
      if (st == OT_OK) {
        CHECKF(item.id && item.id[0] && item.path, "manifest line accepted without id or path:\n%s", buf);
        ot_item_free(&item);
      }
    }
}

/* A manifest file: ot-extract counts its lines and cuts it into blocks
 * (ot_manifest_scan), and each rank reads its blocks from their offsets
 * (ot_manifest_reader): whatever the bytes, the blocks must hold exactly the
 * lines one reader reads from the start, or an item would be lost or read
 * twice. */
static void fuzz_manifest_file(const char *work, int rounds) {
  static const char seed[] = "\xef\xbb\xbf{\"id\": \"a\", \"path\": \"a.png\", \"tags\": [\"x\"]}\n"
                             "{\"id\": \"b\", \"path\": \"b.png\"}\r\n"
                             "\n"
                             "{\"id\": \"d\", \"path\": \"c.png\"}";
  enum { BLOCK = 2, MAX_LINES = 4096 };
  char path[4096];
  snprintf(path, sizeof path, "%s/manifest.jsonl", work);
  static char buf[CAP];
  static char *whole[MAX_LINES];
  for (int r = 0; r < rounds; r++) {
    size_t k = mutate(seed, sizeof seed - 1, buf, sizeof buf);
    if (k && r % 3 == 0) buf[below(k)] = '\0'; /* files can hold NUL bytes */
    write_file(path, buf, k);
    int64_t n_lines = -1, n_blocks = 0, *offsets = NULL, *repeats = NULL, n_rep = 0, n_whole = 0;
    int st = ot_manifest_scan(path, BLOCK, &n_lines, &offsets, &n_blocks);
    check_status(st, "manifest scan", buf);
    if (st) continue;
    check_status(ot_manifest_find_repeats(path, &repeats, &n_rep), "manifest repeats", buf);
    ot_manifest_reader *rd;
    const char *text;
    int64_t line;
    OT_ASSERT(ot_manifest_reader_open(&rd, path, 0, 1) == OT_OK);
    while (n_whole < MAX_LINES && ot_manifest_reader_next(rd, &text, &line)) {
      whole[n_whole++] = ot_xstrdup(text);
      ot_item item;
      const int st_item = ot_manifest_reader_parse(rd, &item);
      check_status(st_item, "manifest file line", buf);
      if (st_item == OT_OK) ot_item_free(&item);
    }
    ot_manifest_reader_close(rd);
    CHECKF(n_whole == n_lines, "manifest scan counted %lld lines, a reader reads %lld:\n%s", (long long)n_lines,
           (long long)n_whole, buf);
    int64_t seen = 0;
    for (int64_t b = 0; b < n_blocks; b++) {
      OT_ASSERT(ot_manifest_reader_open(&rd, path, offsets[b], b * BLOCK + 1) == OT_OK);
      for (int64_t i = 0; i < BLOCK && ot_manifest_reader_next(rd, &text, &line); i++, seen++)
        CHECKF(seen < n_whole && line == seen + 1 && !strcmp(text, whole[seen]),
               "block %lld's line %lld differs from line %lld read from the start:\n%s", (long long)b,
               (long long)line, (long long)seen + 1, buf);
      ot_manifest_reader_close(rd);
    }
    CHECKF(seen == n_whole, "the blocks hold %lld lines, the file %lld:\n%s", (long long)seen, (long long)n_whole,
           buf);
    for (int64_t i = 0; i < n_whole; i++) free(whole[i]);
    free(offsets);
    free(repeats);
  }
}

static void fuzz_config(const char *src, int rounds) {
  static const char *const files[] = {"configs/tiny.yaml", "configs/emoji-en.yaml"};
  static char buf[CAP], set[512];
  static const char *const set_seeds[] = {"train.lr=0.001", "model.type=rag", "retrieve.weights=1,0.5,0.5,1",
                                          "data.dir=runs/x", "eval.judge_gt_pass=0.9"};
  for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
    char path[4096], *text;
    size_t n;
    snprintf(path, sizeof path, "%s/%s", src, files[f]);
    OT_ASSERT(ot_fs_read_all(path, &text, &n) == OT_OK && n < CAP / 2);
    for (int r = 0; r < rounds; r++) {
      mutate(text, n, buf, sizeof buf);
      const char *seed_set = set_seeds[below(sizeof set_seeds / sizeof *set_seeds)];
      const char *sets[1] = {set};
      snprintf(set, sizeof set, "%s", seed_set);
      if (r % 2) mutate(seed_set, strlen(seed_set), set, sizeof set);
      ot_config cfg;
      const int st = ot_config_load_string(&cfg, buf, "fuzz.yaml", sets, 1);
      check_status(st, "config", buf);
      ot_config_free(&cfg);
    }
    free(text);
  }
}

static void fuzz_job(const char *src, const char *work, int rounds) {
  static const char *const stages[] = {"extract", "train", "tag", "embed", "index", "retrieve", "eval", NULL};
  char seed[2048], path[4096];
  const int n = snprintf(seed, sizeof seed,
                         "config: %s/configs/tiny.yaml\n"
                         "state: runs/fuzz\n"
                         "steps:\n"
                         "  - {name: data, run: \"echo data\"}\n"
                         "  - {name: extract, after: [data], stage: extract}\n"
                         "  - name: bin\n"
                         "    stage: train\n"
                         "    set: [model.type=bin, train.dir=runs/fuzz/bin]\n"
                         "  - {name: eval, after: [bin, extract], stage: eval, config: %s/configs/tiny.yaml,\n"
                         "     set: [eval.pred=x.jsonl, eval.name=Bin]}\n",
                         src, src);
  OT_ASSERT(n > 0 && (size_t)n < sizeof seed);
  snprintf(path, sizeof path, "%s/job.yaml", work);
  static char buf[CAP];
  for (int r = 0; r < rounds; r++) {
    const size_t k = mutate(seed, (size_t)n, buf, sizeof buf);
    write_file(path, buf, k);
    ot_job job;
    const int st = ot_job_load(&job, path, stages, NULL, 0);
    check_status(st, "job file", buf);
    ot_job_free(&job);
  }
}

static void fuzz_predictions(const char *work, int rounds) {
  static const char seed[] =
      "{\"id\": \"a\", \"tags\": [{\"tag\": \"cat\", \"score\": 0.9, \"source\": \"gen\"}, {\"tag\": \"Mat\", "
      "\"score\": 0.4, \"source\": \"ret\"}]}\n"
      "{\"id\": \"b\", \"tags\": [{\"tag\": \"\xe7\x8c\xab\", \"score\": 1}, {\"tag\": \"dog\", \"score\": 0.5, "
      "\"source\": \"title\"}]}\n"
      "{\"id\": \"c\", \"tags\": []}\n";
  static const char *const truth_a[] = {"cat", "mat"}, *const truth_b[] = {"dog"};
  char path[4096];
  snprintf(path, sizeof path, "%s/pred.jsonl", work);
  static char buf[CAP];
  for (int r = 0; r < rounds; r++) {
    const size_t k = mutate(seed, sizeof seed - 1, buf, sizeof buf);
    write_file(path, buf, k);
    ot_evalset *e;
    OT_ASSERT(ot_evalset_open(&e) == OT_OK);
    OT_ASSERT(ot_evalset_add_train(e, truth_a, 2, "train 1") == OT_OK);
    OT_ASSERT(ot_evalset_add_truth(e, "a", truth_a, 2) == OT_OK);
    OT_ASSERT(ot_evalset_add_truth(e, "b", truth_b, 1) == OT_OK);
    OT_ASSERT(ot_evalset_add_truth(e, "c", truth_b, 1) == OT_OK);
    check_status(ot_evalset_load_pred(e, path), "predictions", buf);
    ot_evalset_close(e);
  }
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s SOURCE_DIR WORK_DIR [rounds [seed]]\n", argv[0]);
    return 2;
  }
  const char *src = argv[1], *work = argv[2];
  const int rounds = argc > 3 ? atoi(argv[3]) : 5000;
  if (argc > 4) rng ^= strtoull(argv[4], NULL, 0) * 0x100000001b3ull;
  mkdir(work, 0755);
  fuzz_manifest(rounds);
  fuzz_manifest_file(work, rounds);
  fuzz_config(src, rounds);
  fuzz_job(src, work, rounds);
  fuzz_predictions(work, rounds);
  for (int t = 0; t < MAX_TARGETS && counts[t].what; t++) {
    printf("%-18s %6ld inputs, %6ld accepted\n", counts[t].what, counts[t].calls, counts[t].accepted);
    CHECKF(counts[t].accepted > 0, "%s: no mutated input accepted", counts[t].what);
  }
  return ot_test_report();
}
