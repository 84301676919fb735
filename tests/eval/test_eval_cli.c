/* ot-eval end to end on the hand-made set of eval_fixture.h, written as a
 * real dataset (shards + index.json in ot-extract's format; the test split in
 * two shards): the report's numbers, the Markdown table, appending and
 * replacing rows, and the input errors (exit 2 with file:line / the id).
 *
 *   test_eval_cli OT_EVAL WORKDIR [LAUNCHER ...]
 * With a launcher (mpirun -np 2 ...) every ot-eval run goes through it. */
#include "eval_fixture.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_h5.h"
#include "ot_shard.h"
#include "ot_test.h"

#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static const char *prog, *work;
static char **launcher;
static int n_launcher;

/* Write one shard holding items [lo, hi) of `items`. */
static int write_shard(const char *dir, int unit, const fx_item *items, int lo, int hi, json_t *shards) {
  char path[1200], name[64];
  snprintf(name, sizeof name, "shard-%06d.h5", unit);
  snprintf(path, sizeof path, "%s/%s", dir, name);
  ot_shard_writer *w;
  int st = ot_shard_create(&w, path, 1, 2, 2, 0, 0);
  if (st) return st;
  uint8_t frames[12] = {0};
  for (int i = lo; i < hi && st == OT_OK; i++) {
    ot_item it = {.id = (char *)items[i].id, .path = "x.png", .title = "", .group = "",
                  .tags = (char **)items[i].tags, .n_tags = fx_n_tags(&items[i]), .has_tags = 1,
                  .line = i + 1};
    st = ot_shard_append(w, &it, frames, NULL);
  }
  if (st) { ot_shard_abort(w); return st; }
  if ((st = ot_shard_commit(w))) return st;
  json_array_append_new(shards, json_pack("{s:s, s:i, s:i, s:i, s:i}", "shard", name, "first_line",
                                          lo + 1, "n_lines", hi - lo, "items", hi - lo, "n_errors", 0));
  return OT_OK;
}

/* data/<split>/ with the items cut into shards at `cuts` (ascending, ends at n). */
static int write_split(const char *split, const fx_item *items, const int *cuts, int n_cuts) {
  char dir[1024], path[1100];
  snprintf(dir, sizeof dir, "%.990s/data/%s", work, split);
  int st = ot_fs_mkdirs(dir);
  json_t *shards = json_array();
  for (int k = 0, lo = 0; k < n_cuts && st == OT_OK; lo = cuts[k++])
    st = write_shard(dir, k, items, lo, cuts[k], shards);
  int n = cuts[n_cuts - 1];
  json_t *idx = json_pack("{s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:s, s:i, s:i, s:i, s:o}", "format",
                          "open-tag-dataset", "version", 1, "split", split, "manifest", "fixture",
                          "T", 1, "H", 2, "W", 2, "resize", "crop", "lines", n, "items", n, "errors",
                          0, "shards", shards);
  snprintf(path, sizeof path, "%s/index.json", dir);
  if (st == OT_OK && json_dump_file(idx, path, JSON_INDENT(1)))
    st = ot_fail(OT_EIO, "cannot write %s", path);
  json_decref(idx);
  return st;
}

static void write_text(const char *name, const char *text) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", work, name);
  OT_ASSERT(ot_fs_write_atomic(path, text, strlen(text)) == OT_OK);
}

static char *read_text(const char *name) {
  char path[1024], *data = NULL;
  size_t n;
  snprintf(path, sizeof path, "%s/%s", work, name);
  return ot_fs_read_all(path, &data, &n) == OT_OK ? data : NULL;
}

/* Start ot-eval --config WORK/eval.yaml with --set overrides (NULL-terminated);
 * stdout/stderr go to WORK/out.txt and WORK/err.txt. Returns its pid, -1 if
 * it could not start. */
static pid_t spawn_eval(const char *const *sets) {
  char cfg[1024], out[1024], err[1024];
  snprintf(cfg, sizeof cfg, "%s/eval.yaml", work);
  snprintf(out, sizeof out, "%s/out.txt", work);
  snprintf(err, sizeof err, "%s/err.txt", work);
  char *argv[64];
  int n = 0;
  for (int k = 0; k < n_launcher; k++) argv[n++] = launcher[k];
  argv[n++] = (char *)prog;
  argv[n++] = "--config";
  argv[n++] = cfg;
  for (int k = 0; sets && sets[k]; k++) argv[n++] = "--set", argv[n++] = (char *)sets[k];
  argv[n] = NULL;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
  posix_spawn_file_actions_destroy(&fa);
  return rc ? -1 : pid;
}

/* The exit code of a spawned ot-eval, -1 if it did not exit normally. */
static int wait_eval(pid_t pid) {
  int status;
  if (pid < 0) return -1;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

/* Run ot-eval and wait for it: its exit code. */
static int run_eval(const char *const *sets) { return wait_eval(spawn_eval(sets)); }

static int err_has(const char *needle) {
  char *e = read_text("err.txt");
  int ok = e && strstr(e, needle);
  if (!ok) fprintf(stderr, "stderr lacks '%s':\n%s\n", needle, e ? e : "(none)");
  free(e);
  return ok;
}

static json_t *load_report(void) {
  char path[1024];
  snprintf(path, sizeof path, "%s/report.json", work);
  return json_load_file(path, 0, NULL);
}

static double get(const json_t *row, const char *a, const char *b, const char *c) {
  return json_number_value(json_object_get(json_object_get(json_object_get(row, a), b), c));
}

static json_t *row_named(const json_t *rep, const char *name, size_t *at) {
  size_t i;
  json_t *row;
  json_array_foreach(json_object_get(rep, "rows"), i, row) {
    if (!strcmp(json_string_value(json_object_get(row, "name")), name)) {
      if (at) *at = i;
      return row;
    }
  }
  return NULL;
}

/* Every micro and per-item score of a row equals the hand-worked values. */
static int row_matches_fixture(const json_t *row) {
  int ok = row != NULL;
  static const char *const subsets[] = {"overall", "closed", "common", "rare"};
  for (int u = 0; u < 4 && ok; u++) {
    const fx_scores *w = &FX_WANT[u];
    ok = fabs(get(row, "micro", subsets[u], "p") - w->p) < 1e-9 &&
         fabs(get(row, "micro", subsets[u], "r") - w->r) < 1e-9 &&
         fabs(get(row, "micro", subsets[u], "f1") - w->f1) < 1e-9 &&
         fabs(get(row, "per_item", subsets[u], "p") - w->ip) < 1e-9 &&
         fabs(get(row, "per_item", subsets[u], "r") - w->ir) < 1e-9 &&
         fabs(get(row, "per_item", subsets[u], "f1") - w->if1) < 1e-9 &&
         get(row, "micro", subsets[u], "tp") == w->tp &&
         get(row, "per_item", subsets[u], "items") == w->items;
    if (!ok) fprintf(stderr, "row differs from the fixture in '%s'\n", subsets[u]);
  }
  json_t *nov = json_object_get(row, "novelty");
  return ok && json_integer_value(json_object_get(nov, "generated")) == FX_GEN &&
         json_integer_value(json_object_get(nov, "novel_correct")) == FX_NOVEL_CORRECT &&
         fabs(json_number_value(json_object_get(nov, "novel_share")) - 4.0 / 7) < 1e-9 &&
         json_integer_value(json_object_get(row, "items_missing")) == 1;
}

/* Tag Gain embeddings for the fixture (section 6): group/name -> strings or
 * float rows [n, dim]. Vectors need not be unit: ot-eval normalises them. */
static void h5_floats(hid_t f, const char *name, const float *v, hsize_t n, hsize_t dim) {
  hsize_t dims[2] = {n, dim};
  hid_t space = H5Screate_simple(2, dims, NULL);
  hid_t d = H5Dcreate2(f, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  OT_ASSERT(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
  H5Dclose(d);
  H5Sclose(space);
}

/* The fixture's embeddings (worked out in section 6); `broken`: 0 = good,
 * 1 = text/vec missing, 2 = text/vec with 3 columns (image/vec has 2),
 * 3 = good, after a first row "cat" of denormals (too small to normalise:
 * no vector; the valid "CAT " row after it must serve the tag),
 * 4 = image ids of another split (none is an item here),
 * 5 = text tags of another vocabulary (none is a tag here). */
static void write_embeddings(const char *name, int broken) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", work, name);
  hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  OT_ASSERT(f >= 0);
  static const char *const groups[] = {"image", "text", "div"};
  for (int g = 0; g < 3; g++) H5Gclose(H5Gcreate2(f, groups[g], H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  static const char *const ids[] = {"a", "b", "c", "e"}, *other_ids[] = {"x1", "x2", "x3", "x4"};
  static const float img[] = {2, 0, 0, 3, 1, 1, 5, 0};
  OT_ASSERT(ot_h5_write_strings(f, "image/id", broken == 4 ? other_ids : ids, 4) == 0);
  h5_floats(f, "image/vec", img, 4, 2);
  /* No text vector for wolf or bird. */
  static const char *const tags[] = {"cat", "CAT ", "dog", "kitten", "puppy", "sky", "animal"};
  static const char *const other_tags[] = {"Katze", "KATZE", "Hund", "Kätzchen", "Welpe", "Himmel", "Tier"};
  static const float txt[] = {1e-45f, 0, 1, 0, .6f, .8f, .8f, .6f, 0, 1, .6f, .8f, 0, 1};
  static const float txt3[18] = {1};
  const int skip = broken != 3; /* rows from tags[skip], txt[2 * skip] */
  OT_ASSERT(ot_h5_write_strings(f, "text/tag", (broken == 5 ? other_tags : tags) + skip, 7 - skip) == 0);
  if (broken != 1)
    h5_floats(f, "text/vec", broken == 2 ? txt3 : txt + 2 * skip, 7 - skip, broken == 2 ? 3 : 2);
  static const char *const dtags[] = {"Cat", "kitten", "dog", "puppy", "sky", "animal", "wolf"};
  static const float div[] = {1, 0, 0,  .5f, .8660254f, 0,  0, 0, 1,  0, .5f, .8660254f,
                              0, 1, 0,  .6f, 0, .8f,       1, 0, 0};
  OT_ASSERT(ot_h5_write_strings(f, "div/tag", dtags, 7) == 0);
  h5_floats(f, "div/vec", div, 7, 3);
  H5Fclose(f);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s OT_EVAL WORKDIR [LAUNCHER ...]\n", argv[0]);
    return 2;
  }
  prog = argv[1], work = argv[2], launcher = argv + 3, n_launcher = argc - 3;
  OT_ASSERT(ot_fs_mkdirs(work) == OT_OK);
  static const int train_cuts[] = {FX_N_TRAIN}, test_cuts[] = {3, FX_N_TRUTH};
  CHECK(write_split("train", FX_TRAIN, train_cuts, 1) == OT_OK);
  CHECK(write_split("test", FX_TRUTH, test_cuts, 2) == OT_OK);

  char text[8192] = "";
  for (int i = 0; i < FX_N_PRED; i++) strcat(strcat(text, FX_PRED[i]), "\n");
  write_text("pred.jsonl", text);
  /* A perfect model: every item predicts its own ground truth (d predicts nothing). */
  write_text("perfect.jsonl",
             "{\"id\": \"e\", \"tags\": [{\"tag\": \"CAT\"}]}\n"
             "{\"id\": \"a\", \"tags\": [{\"tag\": \"cat\"}, {\"tag\": \"animal\"}]}\n\n"
             "{\"id\": \"b\", \"tags\": [{\"tag\": \"dog\"}, {\"tag\": \"puppy\"}]}\n"
             "{\"id\": \"c\", \"tags\": [{\"tag\": \"cute\"}, {\"tag\": \"sky\"}, {\"tag\": \"cloud\"}]}\n");
  write_text("empty.jsonl", "");
  write_text("bad.jsonl", "{\"id\": \"a\", \"tags\": []}\n{\"id\": \"b\", \"tags\": []}\n{\"id\": \"c\", \"tags\": [\n");
  write_text("unknown.jsonl", "{\"id\": \"a\", \"tags\": []}\n{\"id\": \"nope-42\", \"tags\": []}\n");
  char yaml[2048];
  snprintf(yaml, sizeof yaml,
           "data:\n  name: fixture\n  dir: %s/data\neval:\n  pred: %s/pred.jsonl\n  out: %s/report\n"
           "  common_min: 2\n  name: Bin\n",
           work, work, work);
  write_text("eval.yaml", yaml);

  /* 1. The fixture: numbers, Markdown, stdout. */
  CHECK(run_eval(NULL) == 0);
  json_t *rep = load_report();
  CHECK(rep != NULL);
  json_t *d = json_object_get(rep, "data");
  CHECK(json_integer_value(json_object_get(d, "common_min")) == 2 &&
        json_integer_value(json_object_get(d, "items")) == 5 &&
        json_integer_value(json_object_get(d, "items_without_gt")) == 1 &&
        json_integer_value(json_object_get(d, "shared_tags")) == 5 &&
        json_integer_value(json_object_get(d, "common_tags")) == 2 &&
        json_integer_value(json_object_get(d, "rare_tags")) == 3 &&
        json_integer_value(json_object_get(d, "train_items")) == 4);
  CHECK(json_array_size(json_object_get(rep, "rows")) == 1);
  CHECK(row_matches_fixture(row_named(rep, "Bin", NULL)));
  json_decref(rep);
  char *md = read_text("report.md"), *out = read_text("out.txt");
  /* overall 44.4 50.0 47.1 | common 50.0 33.3 40.0 | rare 66.7 66.7 66.7 | closed 54.5 |
   * per item 40.0 | novel 57.1% | 1 */
  CHECK(md && strstr(md, "| Bin | 44.4 | 50.0 | 47.1 | 50.0 | 33.3 | 40.0 | 66.7 | 66.7 | 66.7 | "
                         "54.5 | 40.0 | 57.1% | 1 |\n"));
  CHECK(md && strstr(md, "split at 2 training items (eval.common_min): 2 common, 3 rare"));
  CHECK(md && strstr(md, "- Bin: 1 of 5 items have no prediction line"));
  CHECK(md && out && !strcmp(md, out));
  free(md);
  free(out);

  /* 2. Append a second model, then rerun the first: its row is replaced in place. */
  static const char *const base[] = {"eval.name=Baseline", "eval.append=true", NULL};
  char set_perfect[1100], set_empty[1100];
  snprintf(set_perfect, sizeof set_perfect, "eval.pred=%s/perfect.jsonl", work);
  snprintf(set_empty, sizeof set_empty, "eval.pred=%s/empty.jsonl", work);
  const char *add_perfect[] = {base[0], base[1], set_perfect, NULL};
  CHECK(run_eval(add_perfect) == 0);
  const char *redo_bin[] = {"eval.append=true", set_empty, NULL};
  CHECK(run_eval(redo_bin) == 0);
  rep = load_report();
  size_t at_bin = 9, at_base = 9;
  json_t *bin = row_named(rep, "Bin", &at_bin), *baseline = row_named(rep, "Baseline", &at_base);
  CHECK(json_array_size(json_object_get(rep, "rows")) == 2 && at_bin == 0 && at_base == 1);
  CHECK(bin && get(bin, "micro", "overall", "f1") == 0 &&
        json_integer_value(json_object_get(bin, "items_missing")) == 5);
  CHECK(baseline && get(baseline, "micro", "overall", "f1") == 1 &&
        get(baseline, "per_item", "overall", "f1") == 1 && get(baseline, "micro", "rare", "p") == 1);
  /* the paired bootstrap: perfect minus empty is +1 on every draw */
  const json_t *pairs = json_object_get(rep, "paired_f1"), *pair = json_array_get(pairs, 0);
  CHECK(json_array_size(pairs) == 1 && pair &&
        !strcmp(json_string_value(json_object_get(pair, "row")), "Baseline") &&
        !strcmp(json_string_value(json_object_get(pair, "vs")), "Bin") &&
        json_number_value(json_object_get(pair, "diff")) == 1 &&
        json_number_value(json_object_get(pair, "lo")) == 1 &&
        json_number_value(json_object_get(pair, "hi")) == 1 &&
        json_integer_value(json_object_get(pair, "rounds")) == 1000);
  json_decref(rep);
  md = read_text("report.md");
  CHECK(md && strstr(md, "| Bin | 0.0 | 0.0 | 0.0 |") && strstr(md, "| Baseline | 100.0 | 100.0 | 100.0 |") &&
        strstr(md, "| Bin |") < strstr(md, "| Baseline |"));
  CHECK(md && strstr(md, "## F1 differences") && strstr(md, "| ΔF1 | Bin |\n") &&
        strstr(md, "| Baseline | +100.0 [+100.0, +100.0] |\n"));
  CHECK(md && !strstr(md, "## Seed means")); /* no row names a model */
  free(md);
  /* Runs of a model (eval.model): two of "Perfect", one of "Empty" -> seed means */
  const char *run_p1[] = {"eval.append=true", "eval.name=p1", "eval.model=Perfect", set_perfect, NULL};
  const char *run_p2[] = {"eval.append=true", "eval.name=p2", "eval.model=Perfect", set_perfect, NULL};
  const char *run_e1[] = {"eval.append=true", "eval.name=e1", "eval.model=Empty", set_empty, NULL};
  CHECK(run_eval(run_p1) == 0 && run_eval(run_e1) == 0 && run_eval(run_p2) == 0);
  rep = load_report();
  const json_t *means = json_object_get(rep, "seed_means"), *mp = json_array_get(means, 0);
  pair = json_array_get(json_object_get(rep, "paired_means"), 0);
  CHECK(json_array_size(means) == 2 && mp && !strcmp(json_string_value(json_object_get(mp, "model")), "Perfect") &&
        json_array_size(json_object_get(mp, "rows")) == 2 && json_number_value(json_object_get(mp, "f1")) == 1);
  CHECK(pair && !strcmp(json_string_value(json_object_get(pair, "row")), "Empty") &&
        json_number_value(json_object_get(pair, "diff")) == -1 && json_number_value(json_object_get(pair, "hi")) == -1);
  json_decref(rep);
  md = read_text("report.md");
  CHECK(md && strstr(md, "## Seed means") && strstr(md, "| Perfect | 2 | 100.0 / 100.0 | 100.0 |") &&
        strstr(md, "| Empty | -100.0 [-100.0, -100.0] |\n"));
  free(md);

  /* Two runs appending at the same moment: each must see the other's row.
   * The test holds the report's lock as another run would between reading
   * and writing the report: ot-eval waits for it (it used to read the report
   * at once and write it back without the row the other run added), then
   * keeps the row added meanwhile. */
  {
    char lock_path[1100];
    snprintf(lock_path, sizeof lock_path, "%s/report.lock", work);
    const int fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0);
    const char *run_late[] = {"eval.append=true", "eval.name=late", set_empty, NULL};
    const pid_t pid = spawn_eval(run_late);
    int status = 0, waited = 0;
    for (; waited < 30 && waitpid(pid, &status, WNOHANG) == 0; waited++) usleep(100000);
    CHECKF(waited == 30, "ot-eval wrote the report while another run held its lock (%.1f s)",
           waited / 10.0);
    rep = load_report(); /* what the other run read; it adds a row and writes */
    json_t *other = json_deep_copy(row_named(rep, "e1", NULL));
    json_object_set_new(other, "name", json_string("meanwhile"));
    json_array_append_new(json_object_get(rep, "rows"), other);
    char rep_path[1100];
    snprintf(rep_path, sizeof rep_path, "%s/report.json", work);
    CHECK(ot_fs_write_json(rep_path, rep, JSON_INDENT(1)) == OT_OK);
    json_decref(rep);
    close(fd); /* releases the lock */
    CHECK((waited < 30 ? (WIFEXITED(status) ? WEXITSTATUS(status) : -1) : wait_eval(pid)) == 0);
    rep = load_report();
    CHECKF(row_named(rep, "meanwhile", NULL) && row_named(rep, "late", NULL),
           "both rows appended at the same moment are in the report (%zu rows)",
           json_array_size(json_object_get(rep, "rows")));
    json_decref(rep);
  }

  /* 3. Appending rows scored with other settings is refused; the report stays. */
  char *before = read_text("report.json");
  const char *other_min[] = {"eval.append=true", "eval.common_min=3", NULL};
  CHECK(run_eval(other_min) == 2);
  CHECK(err_has("report.json: the report was made on other data or settings (data.common_min: 2 there, 3 now)"));
  char *after = read_text("report.json");
  CHECK(before && after && !strcmp(before, after));
  free(after);

  /* 4. Input errors: exit 2 naming file:line or the id; the report is untouched. */
  char set_bad[1100], set_unknown[1100];
  snprintf(set_bad, sizeof set_bad, "eval.pred=%s/bad.jsonl", work);
  snprintf(set_unknown, sizeof set_unknown, "eval.pred=%s/unknown.jsonl", work);
  const char *bad[] = {set_bad, NULL}, *unknown[] = {set_unknown, NULL};
  CHECK(run_eval(bad) == 2);
  CHECK(err_has("bad.jsonl:3: bad JSON"));
  CHECK(run_eval(unknown) == 2);
  CHECK(err_has("unknown.jsonl:2: id 'nope-42' is not in the ground truth"));
  const char *no_pred[] = {"eval.pred=", NULL}, *no_data[] = {"data.dir=/nonexistent/ot-eval", NULL};
  CHECK(run_eval(no_pred) == 2);
  CHECK(err_has("'eval.pred' must be set"));
  CHECK(run_eval(no_data) == 2);
  CHECK(err_has("/nonexistent/ot-eval/train/index.json"));
  char set_folder[1100];
  snprintf(set_folder, sizeof set_folder, "eval.pred=%s/data", work);
  const char *folder_pred[] = {set_folder, NULL};
  CHECK(run_eval(folder_pred) == 2); /* was 1, "read error: Is a directory" */
  CHECK(err_has("/data: eval.pred is a folder, not a predictions file"));
  char set_out_dir[1100];
  snprintf(set_out_dir, sizeof set_out_dir, "eval.out=%s/reports/", work);
  const char *out_dir[] = {set_out_dir, NULL};
  CHECK(run_eval(out_dir) == 2); /* wrote the hidden reports/.json and .md */
  CHECK(err_has("/reports/' ends in '/': it is a prefix"));
  /* A split that holds training items (by id) scores memory: refused. */
  static const fx_item leaky[] = {FX_TRUTH[0], FX_TRAIN[1], FX_TRUTH[1], FX_TRAIN[3]};
  static const int leaky_cuts[] = {4};
  CHECK(write_split("leaky", leaky, leaky_cuts, 1) == OT_OK);
  const char *leak[] = {"eval.split=leaky", NULL};
  CHECK(run_eval(leak) == 2);
  CHECK(err_has("/data/leaky: 2 of its 4 items are also in") && err_has("/data/train ('t2', 't4')"));
  after = read_text("report.json");
  CHECK(before && after && !strcmp(before, after));
  free(before);
  free(after);

  /* 5. Without append a new report starts; the default row name is model.type's. */
  const char *fresh[] = {"eval.name=", NULL};
  CHECK(run_eval(fresh) == 0);
  rep = load_report();
  CHECK(json_array_size(json_object_get(rep, "rows")) == 1 && row_matches_fixture(row_named(rep, "bin", NULL)));
  json_decref(rep);

  /* 6. Tag Gain (tau_rel 0.3, tau_div 0.8) on the fixture's predictions with
   * external embeddings; relevance cos in text space (D = 2), diversity in
   * div space (D2 = 3); all cosines far from the thresholds.
   *   a img (1,0), gt {cat, animal}: cat 1 kept (gt) | kitten .8, div cos(cat)
   *     .5: kept, novel | dog .6, div 0, 0: kept, known  -> known 1, novel 1
   *   b img (0,1), gt {dog, puppy}: puppy 1 kept, in gt but never in training:
   *     novel | dog .8, div cos(puppy) .866: redundant | wolf: unjudged
   *                                                     -> known 0, novel 1
   *   c img (1,1), gt {cute, sky, cloud}: sky .99 kept (gt) | animal .71, div
   *     cos(sky) 0: kept, known                         -> known 1, novel 0
   *   d: no image vector: skipped.  e img (5,0), gt {cat}, no prediction.
   * 4 items scored, all with gt; Σ|gt| = 2+2+3+1 = 8.
   *   T_known 2/4, Δ_known (1/2 + 0 + 1/3 + 0)/4 = 5/24, ratio of sums 2/8
   *   T_novel 2/4, Δ_novel (1/2 + 1/2 + 0 + 0)/4 = 1/4,  ratio of sums 2/8 */
  write_embeddings("emb.h5", 0);
  write_embeddings("emb-missing.h5", 1);
  write_embeddings("emb-shape.h5", 2);
  write_embeddings("emb-tiny-row.h5", 3);
  write_embeddings("emb-other-ids.h5", 4);
  write_embeddings("emb-other-tags.h5", 5);
  char set_emb[1100], set_out[1100];
  snprintf(set_emb, sizeof set_emb, "eval.taggain_embeddings=%s/emb.h5", work);
  snprintf(set_out, sizeof set_out, "eval.out=%s/tg/report", work);
  const char *tg_run[] = {set_emb, set_out, NULL};
  CHECK(run_eval(tg_run) == 0);
  char tg_path[1100];
  snprintf(tg_path, sizeof tg_path, "%s/tg/report.json", work);
  rep = json_load_file(tg_path, 0, NULL);
  json_t *tg = json_object_get(json_array_get(json_object_get(rep, "rows"), 0), "tag_gain");
  CHECK(tg != NULL);
#define TG_NUM(k) json_number_value(json_object_get(tg, k))
#define TG_INT(k) json_integer_value(json_object_get(tg, k))
  CHECKF(fabs(TG_NUM("T_known") - 0.5) < 1e-9 && fabs(TG_NUM("T_novel") - 0.5) < 1e-9, "T %g %g",
         TG_NUM("T_known"), TG_NUM("T_novel"));
  CHECKF(fabs(TG_NUM("delta_known") - 5.0 / 24) < 1e-9 &&
             fabs(TG_NUM("delta_known_ratio_of_sums") - 0.25) < 1e-9,
         "delta_known %g / %g", TG_NUM("delta_known"), TG_NUM("delta_known_ratio_of_sums"));
  CHECKF(fabs(TG_NUM("delta_novel") - 0.25) < 1e-9 &&
             fabs(TG_NUM("delta_novel_ratio_of_sums") - 0.25) < 1e-9,
         "delta_novel %g / %g", TG_NUM("delta_novel"), TG_NUM("delta_novel_ratio_of_sums"));
  CHECK(TG_NUM("tau_rel") == 0.3 && TG_NUM("tau_div") == 0.8);
  CHECK(TG_INT("items") == 4 && TG_INT("skipped_items") == 1 && TG_INT("unjudged_tags") == 1 &&
        TG_INT("redundant_tags") == 1 && TG_INT("kept_tags") == 6 && TG_INT("gt_tags") == 8);
  /* The closed-set numbers are those of section 1. */
  CHECK(row_matches_fixture(json_array_get(json_object_get(rep, "rows"), 0)));
  {
    char set_tiny[1100], out_tiny[1100], path_tiny[1100];
    snprintf(set_tiny, sizeof set_tiny, "eval.taggain_embeddings=%s/emb-tiny-row.h5", work);
    snprintf(out_tiny, sizeof out_tiny, "eval.out=%s/tg-tiny/report", work);
    snprintf(path_tiny, sizeof path_tiny, "%s/tg-tiny/report.json", work);
    const char *tiny_run[] = {set_tiny, out_tiny, NULL};
    CHECK(run_eval(tiny_run) == 0);
    json_t *rep2 = json_load_file(path_tiny, 0, NULL);
    json_t *tg2 = json_object_get(json_array_get(json_object_get(rep2, "rows"), 0), "tag_gain");
    CHECKF(tg2 && json_equal(json_object_get(tg2, "kept_tags"), json_object_get(tg, "kept_tags")) &&
               json_equal(json_object_get(tg2, "T_known"), json_object_get(tg, "T_known")) &&
               json_equal(json_object_get(tg2, "T_novel"), json_object_get(tg, "T_novel")) &&
               json_equal(json_object_get(tg2, "unjudged_tags"), json_object_get(tg, "unjudged_tags")),
           "a row of denormals before the valid one: the same Tag Gain (kept %lld)",
           tg2 ? (long long)json_integer_value(json_object_get(tg2, "kept_tags")) : -1LL);
    json_decref(rep2);
  }
  /* Qualitative examples (default eval.examples 6 > 5 items: all of them),
   * each predicted tag with its Tag Gain fate: b's puppy kept and novel,
   * dog redundant, wolf unjudged. */
  json_t *exs = json_object_get(json_array_get(json_object_get(rep, "rows"), 0), "examples");
  CHECK(json_array_size(exs) == 5);
  size_t xi;
  json_t *x;
  int seen_b = 0;
  json_array_foreach(exs, xi, x) {
    if (strcmp(json_string_value(json_object_get(x, "id")), "b")) continue;
    seen_b = 1;
    size_t ti;
    json_t *tt;
    int fates = 0;
    json_array_foreach(json_object_get(x, "tags"), ti, tt) {
      const char *tag = json_string_value(json_object_get(tt, "tag"));
      const char *fate = json_string_value(json_object_get(tt, "fate"));
      const int novel = json_is_true(json_object_get(tt, "novel"));
      fates += !strcmp(tag, "puppy") && !strcmp(fate, "novel") && novel;
      fates += !strcmp(tag, "dog") && !strcmp(fate, "redundant") && !novel;
      fates += !strcmp(tag, "wolf") && !strcmp(fate, "unjudged");
    }
    CHECKF(fates == 3, "item b's fates: %d of 3 right", fates);
  }
  CHECK(seen_b);
  json_decref(rep);
  snprintf(tg_path, sizeof tg_path, "tg/report.md");
  md = read_text(tg_path);
  CHECK(md && strstr(md, "| Method | T_known | Δ_known | T_novel | Δ_novel | P |") &&
        strstr(md, "| Bin | 0.50 | 20.8% | 0.50 | 25.0% | 44.4 | 50.0 |") &&
        strstr(md, "Tag Gain with τ_rel 0.3, τ_div 0.8 over 4 items (1 skipped") &&
        strstr(md, "## Examples") && strstr(md, "~~dog~~"));
  free(md);
  /* A row without Tag Gain beside it shows dashes. */
  const char *tg_plain[] = {set_out, "eval.append=true", "eval.name=Plain", NULL};
  CHECK(run_eval(tg_plain) == 0);
  md = read_text(tg_path);
  CHECK(md && strstr(md, "| Plain | – | – | – | – | 44.4 |") && strstr(md, "| Bin | 0.50 |"));
  free(md);
  /* Other thresholds: tau_rel 0.65 drops dog (.6) from a, tau_div 0.4 makes
   * kitten (div .5 to cat) redundant in a: T_known = T_novel = 1/4. */
  const char *tg_loose[] = {set_emb, set_out, "eval.tau_rel=0.65", "eval.tau_div=0.4",
                            "eval.name=Strict", "eval.append=true", NULL};
  CHECK(run_eval(tg_loose) == 0);
  snprintf(tg_path, sizeof tg_path, "%s/tg/report.json", work);
  rep = json_load_file(tg_path, 0, NULL);
  const json_t *rows = json_object_get(rep, "rows");
  CHECK(json_array_size(rows) == 3);
  tg = json_object_get(json_array_get(rows, 2), "tag_gain");
  CHECKF(fabs(TG_NUM("T_known") - 0.25) < 1e-9 && fabs(TG_NUM("T_novel") - 0.25) < 1e-9 &&
             TG_NUM("tau_rel") == 0.65 && TG_NUM("tau_div") == 0.4,
         "T_known %g, T_novel %g", TG_NUM("T_known"), TG_NUM("T_novel"));
  /* Strict has other taus than Bin: the table shows both, no Tag Gain
   * difference pairs them (it would hold the thresholds' effect), and both
   * the Markdown and the command say so. */
  CHECK(!json_object_get(rep, "paired_gain"));
  json_decref(rep);
  CHECK(err_has("row 'Strict' has Tag Gain from another tau_rel than row 'Bin'"));
  snprintf(tg_path, sizeof tg_path, "tg/report.md");
  md = read_text(tg_path);
  CHECK(md && strstr(md, "- Tag Gain from different scorers: Bin and Strict (other τ_rel)") &&
        !strstr(md, "## Tag Gain differences"));
  free(md);
  /* A row scored like Bin (the same embeddings and taus) is paired with it,
   * not with Strict: Perfect - Bin. */
  char set_perfect_tg[1100];
  snprintf(set_perfect_tg, sizeof set_perfect_tg, "eval.pred=%s/perfect.jsonl", work);
  const char *tg_same[] = {set_emb, set_out, set_perfect_tg, "eval.name=Perfect", "eval.append=true", NULL};
  CHECK(run_eval(tg_same) == 0);
  snprintf(tg_path, sizeof tg_path, "%s/tg/report.json", work);
  rep = json_load_file(tg_path, 0, NULL);
  rows = json_object_get(rep, "rows");
  CHECK(json_array_size(rows) == 4);
  tg = json_object_get(json_array_get(rows, 3), "tag_gain");
  const double perfect_gain = TG_NUM("delta_known") + TG_NUM("delta_novel");
  tg = json_object_get(json_array_get(rows, 0), "tag_gain");
  const double bin_gain = TG_NUM("delta_known") + TG_NUM("delta_novel");
  const json_t *pg = json_object_get(rep, "paired_gain"), *pair0 = json_array_get(pg, 0);
  CHECKF(json_array_size(pg) == 1 &&
             !strcmp(json_string_value(json_object_get(pair0, "row")), "Perfect") &&
             !strcmp(json_string_value(json_object_get(pair0, "vs")), "Bin") &&
             fabs(json_number_value(json_object_get(pair0, "diff")) - (perfect_gain - bin_gain)) < 1e-9,
         "paired_gain: %zu pairs, diff %g vs %g", json_array_size(pg),
         json_number_value(json_object_get(pair0, "diff")), perfect_gain - bin_gain);
  json_decref(rep);
  snprintf(tg_path, sizeof tg_path, "tg/report.md");
  md = read_text(tg_path);
  const char *sec = md ? strstr(md, "## Tag Gain differences") : NULL;
  const char *cell = sec ? strstr(sec, "| Perfect | ") : NULL;
  CHECK(cell && (cell[12] == '+' || cell[12] == '-') && !strstr(sec, "| Strict | +") &&
        !strstr(sec, "| Strict | -"));
  free(md);
  /* Bad embedding files: exit 2 naming the file and the dataset. */
  snprintf(set_emb, sizeof set_emb, "eval.taggain_embeddings=%s/emb-missing.h5", work);
  CHECK(run_eval(tg_run) == 2);
  CHECK(err_has("emb-missing.h5: Tag Gain embeddings: dataset 'text/vec' is missing"));
  snprintf(set_emb, sizeof set_emb, "eval.taggain_embeddings=%s/emb-shape.h5", work);
  CHECK(run_eval(tg_run) == 2);
  CHECK(err_has("emb-shape.h5: Tag Gain embeddings: dataset 'text/vec' has 3 columns but "
                "'image/vec' has 2"));
  /* A file made for other data binds nothing: every item would be skipped
   * (or every tag unjudged) and the row would show a Tag Gain of 0 as if
   * measured. Refused, naming the dataset; the report is not touched. */
  before = read_text("tg/report.json");
  snprintf(set_emb, sizeof set_emb, "eval.taggain_embeddings=%s/emb-other-ids.h5", work);
  CHECK(run_eval(tg_run) == 2);
  CHECK(err_has("emb-other-ids.h5: Tag Gain embeddings: no entry of dataset 'image/id' (4 entries, "
                "e.g. 'x1') with a usable vector in 'image/vec' names one of the 5 items"));
  snprintf(set_emb, sizeof set_emb, "eval.taggain_embeddings=%s/emb-other-tags.h5", work);
  CHECK(run_eval(tg_run) == 2);
  CHECK(err_has("emb-other-tags.h5: Tag Gain embeddings: no entry of dataset 'text/tag'"));
  after = read_text("tg/report.json");
  CHECK(before && after && !strcmp(before, after));
  free(before);
  free(after);
  snprintf(set_emb, sizeof set_emb, "eval.taggain_embeddings=%s/pred.jsonl", work);
  CHECK(run_eval(tg_run) == 2);
  CHECK(err_has("pred.jsonl: eval.taggain_embeddings: cannot open it as an HDF5 file"));
  return ot_test_report();
}
