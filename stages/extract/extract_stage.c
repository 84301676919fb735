/* ot-extract: manifest of videos/images -> HDF5 shards of sampled frames.
 *
 * Each split's manifest is cut into blocks of extract.shard_items lines; a
 * block is the unit of work: ranks take blocks dynamically and write one
 * shard file per block (<data.dir>/<split>/shard-NNNNNN.h5). Because a
 * block's content depends only on the manifest, the dataset is the same
 * whatever the rank count, and a rerun after a crash redoes only the blocks
 * the ledger does not list as done. Every manifest line ends up either in
 * its shard or in the split's errors.jsonl with a reason. With
 * extract.features, each item's precomputed per-frame features are stored
 * beside its frames (an item without a row is an error record); with
 * extract.store_frames false, instead of them: no media is opened at all. */
#include "extract_stage.h"
#include "features_in.h"
#include "frames.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_ledger.h"
#include "ot_log.h"
#include "ot_manifest.h"
#include "ot_mpi.h"
#include "ot_shard.h"

#include <jansson.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SPLITS[] = {"train", "val", "test"};
enum { N_SPLITS = 3 };

typedef struct {
  int active;
  const char *manifest;   /* from the config */
  char dir[4096];         /* <data.dir>/<split> */
  char item_root[4096];   /* base of relative item paths */
  int64_t n_lines, n_blocks, first_unit;
  int64_t *offsets;       /* [n_blocks+1] byte offsets of each block */
  int64_t *repeats, n_repeats; /* lines repeating an earlier id (ot_manifest_find_repeats) */
  ot_ledger *ledger;
} split_job;

/* Manifest lines in block b (the last block may be short). */
static int64_t block_lines(const split_job *j, int64_t b, int64_t shard_items) {
  return b + 1 == j->n_blocks ? j->n_lines - b * shard_items : shard_items;
}

static const char *split_manifest(const ot_config *c, int s) {
  return s == 0 ? c->data.train : s == 1 ? c->data.val : c->data.test;
}

/* Which splits to run: listed in extract.splits and with a manifest set. */
static int select_splits(const ot_config *cfg, split_job *jobs) {
  char list[256];
  snprintf(list, sizeof list, "%s", cfg->extract.splits);
  for (char *tok = strtok(list, ", "); tok; tok = strtok(NULL, ", ")) {
    int s = -1;
    for (int k = 0; k < N_SPLITS; k++)
      if (!strcmp(tok, SPLITS[k])) s = k;
    if (s < 0)
      return ot_fail(OT_EINVAL, "%s: extract.splits: unknown split '%s' (use train, val, test)",
                     ot_config_origin(cfg, "extract.splits"), tok);
    if (split_manifest(cfg, s)[0]) jobs[s].active = 1;
  }
  int any = 0;
  for (int s = 0; s < N_SPLITS; s++) any |= jobs[s].active;
  if (!any)
    return ot_fail(OT_EINVAL, "config: no manifest to extract: set data.train, data.val or data.test "
                              "for a split listed in extract.splits");
  return OT_OK;
}

/* Settings that shape a split's output: a rerun with others is refused.
 * A setting added later enters only when it differs from its default, so
 * the ledgers of earlier versions stay valid: an upgrade resumes their
 * extraction instead of refusing it. */
static uint64_t split_fingerprint(const ot_config *cfg, const split_job *j) {
  static const char *const keys[] = {"extract.frames", "extract.height", "extract.width",
                                     "extract.resize", "extract.shard_items", "extract.features",
                                     NULL};
  static const char *const since_store_frames[] = {"extract.store_frames", NULL};
  uint64_t h = ot_config_fingerprint(cfg, keys);
  if (!cfg->extract.store_frames) h ^= ot_config_fingerprint(cfg, since_store_frames);
  char extra[4400];
  snprintf(extra, sizeof extra, "%s|%lld|%lld", j->manifest, (long long)j->n_lines,
           (long long)j->offsets[j->n_blocks]);
  for (const char *p = extra; *p; p++) h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
  return h;
}

/* Rank 0 scans the manifests and creates the ledgers; every rank learns the
 * block offsets. Any failure here stops the job before it writes shards. */
static int setup(const ot_config *cfg, split_job *jobs, int64_t *n_units) {
  int rank = ot_mpi_rank(), st = OT_OK;
  if (rank == 0) {
    for (int s = 0; s < N_SPLITS && st == OT_OK; s++) {
      split_job *j = &jobs[s];
      if (!j->active) continue;
      st = ot_manifest_scan(j->manifest, cfg->extract.shard_items, &j->n_lines, &j->offsets,
                            &j->n_blocks);
      if (st == OT_OK && j->n_lines == 0)
        st = ot_fail(OT_EINVAL, "%s: manifest is empty", j->manifest);
      if (st == OT_OK) st = ot_manifest_find_repeats(j->manifest, &j->repeats, &j->n_repeats);
    }
    for (int s = 0; s < N_SPLITS && st == OT_OK; s++) {
      split_job *j = &jobs[s];
      if (!j->active) continue;
      if ((st = ot_fs_mkdirs(j->dir))) break;
      /* a start-over killed half-way must not leave the earlier run's
       * index.json listing a mix of both runs' shards as complete */
      static const char *const published[] = {"index.json", "errors.jsonl", NULL};
      st = ot_ledger_open_unpublish(&j->ledger, j->dir, "extract", split_fingerprint(cfg, j), j->n_blocks,
                                    published);
    }
  }
  if ((st = ot_mpi_agree(st))) return st; /* every rank gets rank 0's message */
  int64_t unit = 0;
  for (int s = 0; s < N_SPLITS; s++) {
    split_job *j = &jobs[s];
    if (!j->active) continue;
    int64_t counts[3] = {j->n_lines, j->n_blocks, j->n_repeats};
    MPI_Bcast(counts, 3, MPI_INT64_T, 0, MPI_COMM_WORLD);
    j->n_lines = counts[0], j->n_blocks = counts[1], j->n_repeats = counts[2];
    ot_mpi_bcast_i64s(&j->offsets, j->n_blocks + 1);
    ot_mpi_bcast_i64s(&j->repeats, 2 * j->n_repeats);
    j->first_unit = unit;
    unit += j->n_blocks;
  }
  if (rank != 0) {
    for (int s = 0; s < N_SPLITS && st == OT_OK; s++)
      if (jobs[s].active)
        st = ot_ledger_open(&jobs[s].ledger, jobs[s].dir, "extract", split_fingerprint(cfg, &jobs[s]), 0);
  }
  *n_units = unit;
  return ot_mpi_agree(st);
}

static void add_error(json_t *errors, const ot_item *it, int64_t line, const char *reason) {
  json_array_append_new(errors, ot_manifest_error_record(line, it ? it->id : NULL,
                                                         it ? it->path : NULL, reason));
}

/* What one rank decodes into: the sampler and its frame buffer (none with
 * extract.store_frames false), and with extract.features the features file
 * and a row buffer [T,D]. */
typedef struct {
  ot_frames *fr;
  uint8_t *frames;
  ot_features_in *feat;
  float *row;
} item_source;

static int source_open(const ot_config *cfg, item_source *src) {
  ot_frames_opts fo = {.frames = cfg->extract.frames, .height = cfg->extract.height,
                       .width = cfg->extract.width,
                       .resize = cfg->extract.resize == OT_RESIZE_MODE_CROP ? OT_RESIZE_CROP
                                                                           : OT_RESIZE_LETTERBOX,
                       .threads = cfg->extract.threads};
  int st = OT_OK;
  if (cfg->extract.store_frames) {
    if ((st = ot_frames_open(&src->fr, &fo))) return st;
    src->frames = malloc((size_t)fo.frames * fo.height * fo.width * 3);
    if (!src->frames) return ot_fail(OT_ENOMEM, "cannot allocate the frame buffer");
  }
  if (!cfg->extract.features[0]) return OT_OK;
  if ((st = ot_features_in_open(&src->feat, cfg->extract.features, fo.frames))) return st;
  src->row = malloc((size_t)fo.frames * ot_features_in_dim(src->feat) * sizeof *src->row);
  return src->row ? OT_OK : ot_fail(OT_ENOMEM, "cannot allocate the feature buffer");
}

static void source_close(item_source *src) {
  ot_frames_close(src->fr);
  free(src->frames);
  ot_features_in_close(src->feat);
  free(src->row);
}

/* Item `it`'s frames (and features) into src. On failure *bad_item says
 * whether the item alone is at fault (undecodable media, no or non-finite
 * features: recorded, the job goes on) or the job (I/O, memory). */
static int source_read(item_source *src, const char *item_root, const ot_item *it, int *bad_item) {
  int st = OT_OK;
  *bad_item = 0;
  if (src->fr) {
    char media[8400];
    ot_fs_join(media, sizeof media, item_root, it->path);
    st = ot_frames_sample(src->fr, media, src->frames, NULL);
    *bad_item = st == OT_EMEDIA;
  }
  if (st == OT_OK && src->feat) {
    st = ot_features_in_read(src->feat, it->id, src->row);
    *bad_item = st == OT_EINVAL;
  }
  return st;
}

/* Extract block `b` of split job `j` into its shard and ledger record. */
static int run_block(const ot_config *cfg, const char *split, split_job *j, int64_t b,
                     item_source *src, ot_workq *q, ot_progress *prog, int64_t *n_ok,
                     int64_t *n_err) {
  const int T = cfg->extract.frames, H = src->fr ? cfg->extract.height : 0;
  const int W = src->fr ? cfg->extract.width : 0;
  const int D = src->feat ? ot_features_in_dim(src->feat) : 0;
  const int64_t first_line = b * cfg->extract.shard_items + 1;
  const int64_t n_lines = block_lines(j, b, cfg->extract.shard_items);
  char shard_name[64], shard_path[4200];
  snprintf(shard_name, sizeof shard_name, "shard-%06lld.h5", (long long)b);
  snprintf(shard_path, sizeof shard_path, "%s/%s", j->dir, shard_name);

  ot_manifest_reader *rd = NULL;
  ot_shard_writer *w = NULL;
  int st = ot_manifest_reader_open(&rd, j->manifest, j->offsets[b], first_line);
  if (st == OT_OK) st = ot_shard_create(&w, shard_path, T, H, W, D, cfg->extract.deflate);
  json_t *errors = json_array();
  int64_t ok = 0, seen = 0;
  const char *text;
  int64_t line;
  while (st == OT_OK && seen < n_lines && ot_manifest_reader_next(rd, &text, &line)) {
    seen++;
    ot_item it;
    if (ot_manifest_reader_parse(rd, &it) != OT_OK) {
      add_error(errors, NULL, line, ot_errmsg());
    } else if (ot_manifest_check_unique(j->repeats, j->n_repeats, line) != OT_OK) {
      add_error(errors, &it, line, ot_errmsg());
      ot_item_free(&it);
    } else {
      int bad_item;
      int fst = source_read(src, j->item_root, &it, &bad_item);
      if (fst == OT_OK) {
        st = ot_shard_append(w, &it, src->frames, src->feat ? src->row : NULL);
        ok += st == OT_OK;
      } else if (bad_item) {
        add_error(errors, &it, line, ot_errmsg());
      } else { /* the job's fault (I/O, memory), but say where it stopped */
        st = ot_fail_ctx(fst, "%s:%lld (item %s, %s)", j->manifest, (long long)line, it.id, it.path);
      }
      ot_item_free(&it);
    }
    ot_workq_add_done(q, 1);
    ot_progress_update(prog, ot_workq_done(q));
  }
  if (st == OT_OK && seen != n_lines)
    st = ot_fail(OT_EIO, "%s: expected %lld lines from line %lld, read %lld (changed while running?)",
                 j->manifest, (long long)n_lines, (long long)first_line, (long long)seen);
  ot_manifest_reader_close(rd);
  if (st == OT_OK) {
    int64_t n_errors = (int64_t)json_array_size(errors);
    char *cfg_yaml = ot_config_dump(cfg);
    if ((st = ot_shard_attr_str(w, "split", split)) == OT_OK &&
        (st = ot_shard_attr_str(w, "manifest", j->manifest)) == OT_OK &&
        (st = ot_shard_attr_str(w, "config", cfg_yaml)) == OT_OK &&
        (st = ot_shard_attr_i64(w, "unit", b)) == OT_OK &&
        (st = ot_shard_attr_i64(w, "first_line", first_line)) == OT_OK &&
        (st = ot_shard_attr_i64(w, "n_lines", n_lines)) == OT_OK &&
        (st = ot_shard_attr_i64(w, "n_errors", n_errors)) == OT_OK)
      st = ot_shard_commit(w);
    else
      ot_shard_abort(w);
    w = NULL;
    free(cfg_yaml);
    if (st == OT_OK) {
      json_t *rec = json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:O}", "split", split, "unit",
                              (json_int_t)b, "shard", shard_name, "first_line", (json_int_t)first_line,
                              "n_lines", (json_int_t)n_lines, "items", (json_int_t)ok, "n_errors",
                              (json_int_t)n_errors, "errors", errors);
      char *txt = json_dumps(rec, JSON_COMPACT | JSON_ENSURE_ASCII);
      st = ot_ledger_mark_done(j->ledger, b, txt);
      free(txt);
      json_decref(rec);
      *n_ok += ok;
      *n_err += n_errors;
    }
  }
  ot_shard_abort(w);
  json_decref(errors);
  return st;
}

/* Rank 0, after every rank finished: the split's index.json and errors.jsonl,
 * assembled from the ledger records. */
static int write_split_outputs(const ot_config *cfg, const char *split, split_job *j) {
  json_t *shards = json_array();
  int64_t items = 0, n_errors = 0;
  ot_lines errs = {0};
  int st = OT_OK;
  for (int64_t b = 0; b < j->n_blocks && st == OT_OK; b++) {
    char *txt = NULL;
    if ((st = ot_ledger_read(j->ledger, b, &txt))) break;
    json_error_t jerr;
    json_t *rec = json_loads(txt, 0, &jerr);
    free(txt);
    if (!rec) { st = ot_fail(OT_EIO, "%s: ledger record %lld unreadable", j->dir, (long long)b); break; }
    items += json_integer_value(json_object_get(rec, "items"));
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(rec, "errors"), i, e) {
      json_object_set_new(e, "split", json_string(split));
      char *line = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);
      ot_lines_add(&errs, line);
      free(line);
      n_errors++;
    }
    json_object_del(rec, "errors");
    json_object_del(rec, "split");
    json_object_del(rec, "unit");
    json_array_append_new(shards, rec);
  }
  if (st == OT_OK) {
    char path[4200];
    snprintf(path, sizeof path, "%s/errors.jsonl", j->dir);
    st = ot_fs_write_atomic(path, errs.p ? errs.p : "", errs.len);
  }
  const int H = cfg->extract.store_frames ? cfg->extract.height : 0; /* 0 x 0: no frames */
  const int W = cfg->extract.store_frames ? cfg->extract.width : 0;
  if (st == OT_OK) {
    json_t *idx = json_pack("{s:s, s:i, s:s, s:s, s:i, s:i, s:i, s:s, s:s, s:I, s:I, s:I, s:O}",
                            "format", "open-tag-dataset", "version", 1, "split", split, "manifest",
                            j->manifest, "T", cfg->extract.frames, "H", H, "W", W, "features",
                            cfg->extract.features, "resize",
                            cfg->extract.resize == OT_RESIZE_MODE_CROP ? "crop" : "letterbox",
                            "lines", (json_int_t)j->n_lines, "items", (json_int_t)items, "errors",
                            (json_int_t)n_errors, "shards", shards);
    char path[4200];
    snprintf(path, sizeof path, "%s/index.json", j->dir);
    st = ot_fs_write_json(path, idx, JSON_INDENT(1) | JSON_ENSURE_ASCII);
    json_decref(idx);
    if (st == OT_OK)
      ot_log_info("%s: %lld lines -> %lld items in %lld shards, %lld errors (%s/errors.jsonl)", split,
                  (long long)j->n_lines, (long long)items, (long long)j->n_blocks,
                  (long long)n_errors, j->dir);
  }
  ot_lines_free(&errs);
  json_decref(shards);
  return st;
}

int ot_extract_stage_run(const ot_config *cfg, int *exit_code) {
  (void)exit_code;
  split_job jobs[N_SPLITS];
  memset(jobs, 0, sizeof jobs);
  int st = ot_config_require(cfg, "data.dir");
  if (st == OT_OK && !cfg->extract.store_frames && !cfg->extract.features[0])
    st = ot_fail(OT_EINVAL, "%s: extract.store_frames is false but extract.features is not set: "
                 "the shards would hold nothing to see", ot_config_origin(cfg, "extract.store_frames"));
  if (st == OT_OK) st = select_splits(cfg, jobs);
  if (st) return st;
  for (int s = 0; s < N_SPLITS; s++) {
    split_job *j = &jobs[s];
    j->manifest = split_manifest(cfg, s);
    snprintf(j->dir, sizeof j->dir, "%s/%s", cfg->data.dir, SPLITS[s]);
    if (cfg->data.root[0]) snprintf(j->item_root, sizeof j->item_root, "%s", cfg->data.root);
    else ot_fs_dirname(j->item_root, sizeof j->item_root, j->manifest);
  }
  int64_t n_units = 0;
  if ((st = setup(cfg, jobs, &n_units))) goto out;

  /* Lines of blocks finished by an earlier run count as done for progress. */
  int64_t total_lines = 0, lines_done = 0;
  for (int s = 0; s < N_SPLITS; s++) {
    split_job *j = &jobs[s];
    if (!j->active) continue;
    total_lines += j->n_lines;
    for (int64_t b = 0; b < j->n_blocks; b++)
      if (ot_ledger_is_done(j->ledger, b)) lines_done += block_lines(j, b, cfg->extract.shard_items);
  }
  if (lines_done)
    ot_log_info0("resuming: %lld of %lld lines already extracted", (long long)lines_done,
                 (long long)total_lines);

  item_source src = {0};
  ot_workq *q = NULL;
  /* a rank may fail alone (a file its node cannot see, its memory): the
     agreement carries the failing rank's message to rank 0, which reports */
  int local = source_open(cfg, &src);
  st = ot_mpi_agree(local);
  if (st == OT_OK) st = ot_workq_open(&q, n_units);
  if (st == OT_OK) {
    ot_progress prog;
    ot_progress_start(&prog, "items", total_lines, lines_done);
    ot_workq_add_done(q, ot_mpi_rank() == 0 ? lines_done : 0);
    int64_t n_ok = 0, n_err = 0, u;
    double t0 = ot_now();
    while (local == OT_OK && (u = ot_workq_next(q)) >= 0) {
      int s = 0;
      while (!jobs[s].active || u >= jobs[s].first_unit + jobs[s].n_blocks) s++;
      int64_t b = u - jobs[s].first_unit;
      if (ot_ledger_is_done(jobs[s].ledger, b)) continue;
      local = run_block(cfg, SPLITS[s], &jobs[s], b, &src, q, &prog, &n_ok, &n_err);
      if (local) ot_log_error("%s", ot_errmsg());
    }
    ot_log_info("extracted %lld items, %lld errors in %.1fs", (long long)n_ok, (long long)n_err,
                ot_now() - t0);
    MPI_Barrier(MPI_COMM_WORLD);
    ot_progress_finish(&prog, ot_workq_done(q));
    /* the failing rank's message reaches rank 0, which reports: the block
       a rank stopped at, then the index or errors.jsonl rank 0 could not
       write */
    st = ot_mpi_agree(local);
    if (st == OT_OK) {
      if (ot_mpi_rank() == 0)
        for (int s = 0; s < N_SPLITS && st == OT_OK; s++)
          if (jobs[s].active) st = write_split_outputs(cfg, SPLITS[s], &jobs[s]);
      st = ot_mpi_agree(st);
    }
  }
  ot_workq_close(q);
  source_close(&src);
out:
  for (int s = 0; s < N_SPLITS; s++) {
    free(jobs[s].offsets);
    free(jobs[s].repeats);
    ot_ledger_close(jobs[s].ledger);
  }
  return st;
}

const ot_cli_info ot_extract_stage_info = {
    "ot-extract",
    "Decode the videos/images listed in the data.train/val/test manifests (JSON Lines), sample\n"
    "extract.frames frames uniformly, resize to extract.height x extract.width, and write HDF5\n"
    "shards under data.dir/<split>/ with index.json and errors.jsonl. Resumable: rerun the same\n"
    "command after a crash and only missing shards are extracted.",
    "data extract", "data.train data.val data.test"};
