/* ot-emoji-data: builds the emoji benchmark manifests (emoji-en, emoji-zh
 * and their -video variants), the clip plan and summary.json from the npm
 * packages installed by emoji-data.sh. Rendering the clips is the
 * script's job (ffmpeg CLI); this program only decides which and how. */
#include "ot_emoji.h"

#include "ot_common.h"
#include "ot_fs.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: ot-emoji-data --npm NODE_MODULES --out OUTDIR [--vendors google,twitter] [--clips N]\n"
    "\n"
    "Reads emoji-datasource-<vendor> (64 px images, emoji.json) and emojibase-data\n"
    "(en, zh labels and tags) from NODE_MODULES and writes into OUTDIR:\n"
    "  emoji-{en,zh}.{train,val,test}.jsonl        one item per (emoji, vendor) image\n"
    "  emoji-{en,zh}-video.{train,val,test}.jsonl  N of them as clips/<id>.mp4\n"
    "  clips/plan.tsv                              what emoji-data.sh renders\n"
    "  summary.json                                figures per benchmark and split\n"
    "Split by base emoji: FNV-1a 32 of its hexcode h, h%100 < 80 train, < 85 val, else test.\n"
    "  --vendors LIST  comma-separated image vendors (default google,twitter)\n"
    "  --clips N       clips in the video variant (default 300; 0: no video variant)\n";

static const char *const langs[] = {"en", "zh"};
enum { NLANGS = 2 };

typedef struct {
  const char *npm, *out;
  char vendor_buf[256];
  const char *vendors[OT_EMOJI_MAX_VENDORS];
  int n_vendors;
  size_t clips;
} options;

static int parse_vendors(options *o, const char *list) {
  if (strlen(list) >= sizeof o->vendor_buf) return ot_fail(OT_EINVAL, "--vendors: list too long");
  strcpy(o->vendor_buf, list);
  o->n_vendors = 0;
  for (char *save = NULL, *v = strtok_r(o->vendor_buf, ",", &save); v; v = strtok_r(NULL, ",", &save)) {
    for (const char *c = v; *c; c++)
      if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9')))
        return ot_fail(OT_EINVAL, "--vendors: '%s' is not a vendor name (lowercase letters, digits)", v);
    for (int k = 0; k < o->n_vendors; k++)
      if (strcmp(o->vendors[k], v) == 0) return ot_fail(OT_EINVAL, "--vendors: '%s' given twice", v);
    if (o->n_vendors == OT_EMOJI_MAX_VENDORS) return ot_fail(OT_EINVAL, "--vendors: too many vendors");
    o->vendors[o->n_vendors++] = v;
  }
  return o->n_vendors ? OT_OK : ot_fail(OT_EINVAL, "--vendors: empty list");
}

static int parse_args(options *o, int argc, char **argv) {
  memset(o, 0, sizeof *o);
  o->clips = 300;
  int st = parse_vendors(o, "google,twitter");
  for (int i = 1; i < argc && st == OT_OK; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      fputs(usage, stdout);
      exit(0);
    }
    if (i + 1 >= argc) return ot_fail(OT_EINVAL, "%s: missing value (see --help)", a);
    const char *val = argv[++i];
    if (strcmp(a, "--npm") == 0) o->npm = val;
    else if (strcmp(a, "--out") == 0) o->out = val;
    else if (strcmp(a, "--vendors") == 0) st = parse_vendors(o, val);
    else if (strcmp(a, "--clips") == 0) {
      char *end;
      errno = 0;
      long long n = strtoll(val, &end, 10);
      if (errno || *end || end == val || n < 0 || n > 1000000)
        return ot_fail(OT_EINVAL, "--clips: '%s' is not a count in 0..1000000", val);
      o->clips = (size_t)n;
    } else return ot_fail(OT_EINVAL, "unknown option '%s' (see --help)", a);
  }
  if (st) return st;
  if (!o->npm || !o->out) return ot_fail(OT_EINVAL, "--npm and --out are required (see --help)");
  return OT_OK;
}

/* What manifests write in front of "emoji-datasource-...": the npm folder
 * relative to OUTDIR when it lies inside (lexically, so a symlinked npm
 * folder stays relative), else its absolute path. Ends with '/'. */
static int image_prefix(char *buf, size_t cap, const char *npm, const char *out) {
  size_t lo = strlen(out), ln = strlen(npm);
  while (lo > 1 && out[lo - 1] == '/') lo--;
  while (ln > 1 && npm[ln - 1] == '/') ln--;
  const char *rel = NULL;
  if (lo == 1 && out[0] == '.' && npm[0] != '/' && strncmp(npm, "../", 3) != 0) rel = npm;
  else if (ln > lo + 1 && strncmp(npm, out, lo) == 0 && npm[lo] == '/') rel = npm + lo + 1;
  if (rel) {
    while (strncmp(rel, "./", 2) == 0) rel += 2;
    size_t n = (size_t)(npm + ln - rel);
    if (n + 2 > cap) return ot_fail(OT_EINVAL, "%s: path too long", npm);
    memcpy(buf, rel, n);
    strcpy(buf + n, "/");
    return OT_OK;
  }
  char abs[PATH_MAX];
  if (!realpath(npm, abs)) return ot_fail(OT_EINVAL, "%s: %s", npm, strerror(errno));
  size_t n = strlen(abs);
  if (n + 2 > cap) return ot_fail(OT_EINVAL, "%s: path too long", abs);
  memcpy(buf, abs, n);
  strcpy(buf + n, "/");
  return OT_OK;
}

/* "version" of an installed package, or null when it cannot be read. */
static json_t *package_version(const char *npm, const char *pkg) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/package.json", npm, pkg);
  json_t *root = json_load_file(path, 0, NULL);
  json_t *v = json_object_get(root, "version");
  json_t *r = json_is_string(v) ? json_string(json_string_value(v)) : json_null();
  json_decref(root);
  return r;
}

static void remove_if_present(const char *path) {
  if (unlink(path) != 0 && errno != ENOENT) fprintf(stderr, "warning: cannot remove %s: %s\n", path, strerror(errno));
}

static void print_table(json_t *benches) {
  printf("%-16s %-5s %6s %6s %11s %9s\n", "benchmark", "split", "items", "groups", "unique_tags", "mean_tags");
  const char *name;
  json_t *b;
  json_object_foreach(benches, name, b) {
    for (int s = 0; s < OT_EMOJI_NSPLITS; s++) {
      json_t *o = json_object_get(json_object_get(b, "splits"), ot_emoji_split_names[s]);
      printf("%-16s %-5s %6lld %6lld %11lld %9.3f\n", name, ot_emoji_split_names[s],
             (long long)json_integer_value(json_object_get(o, "items")),
             (long long)json_integer_value(json_object_get(o, "groups")),
             (long long)json_integer_value(json_object_get(o, "unique_tags")),
             json_real_value(json_object_get(o, "mean_tags")));
    }
    printf("%-16s test tags never seen in train: %lld (%.1f%% of unique test tags)\n", name,
           (long long)json_integer_value(json_object_get(b, "test_tags_unseen_in_train")),
           100.0 * json_real_value(json_object_get(b, "test_tags_unseen_share")));
    json_t *missing = json_object_get(b, "missing_images");
    if (missing) {
      printf("%-16s missing images:", name);
      const char *vendor;
      json_t *count;
      json_object_foreach(missing, vendor, count) printf(" %s %lld", vendor, (long long)json_integer_value(count));
      printf("; left out: %lld without tags, %lld components\n",
             (long long)json_integer_value(json_object_get(b, "skipped_no_tags")),
             (long long)json_integer_value(json_object_get(b, "skipped_components")));
    }
  }
}

static int run(const options *o) {
  double t0 = ot_now();
  char prefix[4096], path[4096];
  int st = image_prefix(prefix, sizeof prefix, o->npm, o->out);
  if (st) return st;
  ot_emoji_images *images[OT_EMOJI_MAX_VENDORS] = {0};
  ot_emoji_base base[NLANGS] = {0};
  ot_emoji_items items[NLANGS] = {0};
  ot_emoji_clip *clips = NULL;
  size_t n_clips = 0;
  json_t *summary = NULL;
  for (int v = 0; v < o->n_vendors && st == OT_OK; v++) {
    snprintf(path, sizeof path, "%s/emoji-datasource-%s/emoji.json", o->npm, o->vendors[v]);
    st = ot_emoji_images_open(&images[v], path, o->vendors[v]);
  }
  for (int l = 0; l < NLANGS && st == OT_OK; l++) {
    snprintf(path, sizeof path, "%s/emojibase-data/%s/data.json", o->npm, langs[l]);
    if ((st = ot_emoji_base_load(&base[l], path))) break;
    if ((st = ot_emoji_items_build(&items[l], &base[l], images, o->npm, prefix, o->vendors, o->n_vendors))) break;
    snprintf(path, sizeof path, "emoji-%s", langs[l]);
    st = ot_emoji_write_manifests(o->out, path, &items[l], NULL, 0);
  }
  if (st == OT_OK && o->clips > 0) {
    /* Picked on the en items; the zh variant shows the same clips. */
    n_clips = ot_emoji_clips_pick(&clips, &items[0], o->clips);
    st = ot_emoji_write_clip_plan(o->out, clips, n_clips);
    for (int l = 0; l < NLANGS && st == OT_OK; l++) {
      snprintf(path, sizeof path, "emoji-%s-video", langs[l]);
      st = ot_emoji_write_manifests(o->out, path, &items[l], clips, n_clips);
    }
  } else if (st == OT_OK) {
    /* No video variant: leave no stale one behind. */
    for (int l = 0; l < NLANGS; l++)
      for (int s = 0; s < OT_EMOJI_NSPLITS; s++) {
        snprintf(path, sizeof path, "%s/emoji-%s-video.%s.jsonl", o->out, langs[l], ot_emoji_split_names[s]);
        remove_if_present(path);
      }
    snprintf(path, sizeof path, "%s/clips/plan.tsv", o->out);
    remove_if_present(path);
  }
  if (st == OT_OK) {
    summary = json_object();
    json_t *src = json_object(), *vend = json_array(), *benches = json_object();
    for (int v = 0; v < o->n_vendors; v++) {
      snprintf(path, sizeof path, "emoji-datasource-%s", o->vendors[v]);
      json_object_set_new(src, path, package_version(o->npm, path));
      json_array_append_new(vend, json_string(o->vendors[v]));
    }
    json_object_set_new(src, "emojibase-data", package_version(o->npm, "emojibase-data"));
    json_object_set_new(summary, "sources", src);
    json_object_set_new(summary, "vendors", vend);
    json_object_set_new(summary, "split_rule",
                        json_string("group = base hexcode without skin tones, uppercase; h = FNV-1a 32 of "
                                    "its bytes; h%100 < 80 train, < 85 val, else test"));
    for (int l = 0; l < NLANGS; l++) {
      json_t *b = ot_emoji_bench_stats(&items[l], NULL, 0, o->vendors, o->n_vendors, 1);
      json_object_set_new(b, "skipped_no_tags", json_integer((json_int_t)base[l].skipped_no_tags));
      json_object_set_new(b, "skipped_components", json_integer((json_int_t)base[l].skipped_components));
      snprintf(path, sizeof path, "emoji-%s", langs[l]);
      json_object_set_new(benches, path, b);
    }
    for (int l = 0; l < NLANGS && n_clips > 0; l++) {
      snprintf(path, sizeof path, "emoji-%s-video", langs[l]);
      json_object_set_new(benches, path, ot_emoji_bench_stats(&items[l], clips, n_clips, o->vendors, o->n_vendors, 0));
    }
    json_object_set_new(summary, "benchmarks", benches);
    json_object_set(summary, "missing_image_hexcodes", items[0].missing_hex);
    snprintf(path, sizeof path, "%s/summary.json", o->out);
    st = ot_fs_write_json(path, summary, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
    if (st == OT_OK) {
      print_table(benches);
      fprintf(stderr, "ot-emoji-data: %zu en and %zu zh items, %zu clips planned, in %.2f s\n", items[0].n,
              items[1].n, n_clips, ot_now() - t0);
    }
  }
  json_decref(summary);
  free(clips);
  for (int l = 0; l < NLANGS; l++) {
    ot_emoji_items_free(&items[l]);
    ot_emoji_base_free(&base[l]);
  }
  for (int v = 0; v < o->n_vendors; v++) ot_emoji_images_close(images[v]);
  return st;
}

int main(int argc, char **argv) {
  options o;
  int st = parse_args(&o, argc, argv);
  if (st == OT_OK) st = run(&o);
  if (st) fprintf(stderr, "ot-emoji-data: %s\n", ot_errmsg());
  return ot_exit_code(st);
}
