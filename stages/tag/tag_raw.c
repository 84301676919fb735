/* ot-tag straight over a manifest of raw videos/images (tag.manifest): each
 * item is decoded (ot_frames), encoded and tagged in one pass, so an archive
 * never has its frames stored. The unit of work is a chunk of tag.chunk
 * manifest lines; ranks take chunks dynamically and write, atomically,
 *   <out>/errors-NNNNNN.jsonl  the chunk's failed lines (only if any)
 *   <out>/part-NNNNNN.jsonl    its tags
 * then its ledger record. A chunk is done iff its record exists, so a job
 * killed at any point and rerun redoes only the chunks in flight, and every
 * manifest line ends up exactly once in tags.jsonl or errors.jsonl (rank 0
 * joins the parts in chunk order at the end).
 *
 * Frames are sampled as the checkpoint's training data was: its T, H, W and
 * the extract.resize of its config (ot-extract's sampler, same bytes). A rag
 * model gets each pass's retrieved candidates computed on the spot
 * (tag_raw_rag.c). */
#include "tagger.h"

#include "frames.h"
#include "ot_common.h"
#include "ot_fs.h"
#include "ot_hash.h"
#include "ngram.h"
#include "ot_manifest.h"
#include "titles.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
  const char *manifest;
  char item_root[4200];   /* base of relative item paths */
  int64_t n_lines, n_chunks, chunk;
  int64_t *offsets;       /* [n_chunks+1] byte offset where each chunk starts */
  int64_t *repeats, n_repeats; /* lines repeating an earlier id (ot_manifest_find_repeats) */
  int64_t size;           /* manifest bytes (fingerprint) */
  ot_resize_mode resize;
  ot_frames *fr;
  size_t frame_bytes;     /* T*H*W*3 */
  int B, L;
  uint8_t *frames;        /* [B,T,H,W,3] */
  int32_t *title;         /* [B,L] */
  uint8_t *mask;          /* [B,L] */
  int32_t *words;         /* [B,L] generative: the titles' words, tokenized as tags */
  uint8_t *words_mask;    /* [B,L] */
  int D;                  /* model.title_ngram of the checkpoint, 0: none */
  float *ngram;           /* [B,D] the titles' n-gram vectors */
  ot_titles *titles;      /* the training batches' title rules (titles.h) */
  char **ids;             /* [B], owned while in a pass */
  char **title_text;      /* [B], owned while in a pass */
  tag_rag_input *rag;     /* rag: the candidates of a pass */
} raw_input;

/* The checkpoint's resize mode (from the config it was trained with), else
 * extract.resize. */
static ot_resize_mode ckpt_resize(const tagger *t) {
  int mode = t->cfg->extract.resize;
  ot_config saved;
  memset(&saved, 0, sizeof saved);
  if (t->inf.meta.config && ot_config_load_string(&saved, t->inf.meta.config, t->inf.ckpt, NULL, 0) == OT_OK)
    mode = saved.extract.resize;
  ot_config_free(&saved);
  return mode == OT_RESIZE_MODE_CROP ? OT_RESIZE_CROP : OT_RESIZE_LETTERBOX;
}

/* Rank 0 scans the manifest; every rank learns the chunk offsets. */
static int scan_manifest(tagger *t, raw_input *in) {
  int st = OT_OK;
  if (ot_mpi_rank() == 0) {
    struct stat sb;
    st = ot_manifest_scan(in->manifest, in->chunk, &in->n_lines, &in->offsets, &in->n_chunks);
    if (st == OT_OK && in->n_lines == 0) st = ot_fail(OT_EINVAL, "%s: manifest is empty", in->manifest);
    if (st == OT_OK) in->size = stat(in->manifest, &sb) == 0 ? (int64_t)sb.st_size : 0;
    if (st == OT_OK) st = ot_manifest_find_repeats(in->manifest, &in->repeats, &in->n_repeats);
  }
  if ((st = ot_mpi_agree(st))) return st; /* every rank gets rank 0's message */
  int64_t v[4] = {in->n_lines, in->n_chunks, in->size, in->n_repeats};
  MPI_Bcast(v, 4, MPI_INT64_T, 0, MPI_COMM_WORLD);
  in->n_lines = v[0], in->n_chunks = v[1], in->size = v[2], in->n_repeats = v[3];
  ot_mpi_bcast_i64s(&in->offsets, in->n_chunks + 1);
  ot_mpi_bcast_i64s(&in->repeats, 2 * in->n_repeats);
  (void)t;
  return OT_OK;
}

int tag_raw_check_model(const ot_infer *inf, const char *what) {
  if (!ot_model_reads_features(inf->model)) return OT_OK;
  return ot_fail(OT_EINVAL, "%s %s reads precomputed per-frame features (model.visual features), "
                 "which raw media cannot give: extract the archive with extract.features and tag "
                 "its shards (tag.split)", what, inf->ckpt);
}

/* The sampler and the buffers of one pass. */
static int open_input(tagger *t, raw_input *in) {
  const ot_config *cfg = t->cfg;
  int st = tag_raw_check_model(&t->inf, "the checkpoint");
  if (st) return st;
  if (cfg->data.root[0]) snprintf(in->item_root, sizeof in->item_root, "%s", cfg->data.root);
  else ot_fs_dirname(in->item_root, sizeof in->item_root, in->manifest);
  in->resize = ckpt_resize(t);
  ot_frames_opts fo = {.frames = t->inf.meta.T, .height = t->inf.meta.H, .width = t->inf.meta.W,
                       .resize = in->resize, .threads = cfg->extract.threads};
  if ((st = ot_frames_open(&in->fr, &fo))) return st;
  in->B = cfg->tag.batch, in->L = cfg->model.title_len;
  in->frame_bytes = (size_t)t->inf.meta.T * t->inf.meta.H * t->inf.meta.W * 3;
  in->frames = malloc((size_t)in->B * in->frame_bytes);
  in->title = malloc((size_t)in->B * in->L * sizeof *in->title);
  in->mask = malloc((size_t)in->B * in->L);
  if (t->gen) {
    in->words = malloc((size_t)in->B * in->L * sizeof *in->words);
    in->words_mask = malloc((size_t)in->B * in->L);
  }
  in->D = ot_model_title_ngram(t->inf.model);
  if (in->D) in->ngram = malloc((size_t)in->B * in->D * sizeof *in->ngram);
  if (!in->frames || !in->title || !in->mask || (t->gen && (!in->words || !in->words_mask)) ||
      (in->D && !in->ngram))
    return ot_fail(OT_ENOMEM, "cannot allocate input buffers for %d items", in->B);
  ot_titles_open(&in->titles, t->inf.bpe, in->L);
  in->ids = ot_xcalloc((size_t)in->B, sizeof *in->ids);
  in->title_text = ot_xcalloc((size_t)in->B, sizeof *in->title_text);
  if (cfg->model.type == OT_MODEL_RAG) return tag_rag_input_open(&in->rag, t, in->B);
  return OT_OK;
}

static void close_input(raw_input *in) {
  ot_frames_close(in->fr);
  free(in->frames);
  free(in->title);
  free(in->mask);
  free(in->words);
  free(in->words_mask);
  free(in->ngram);
  ot_titles_close(in->titles);
  free(in->ids);
  free(in->title_text);
  free(in->offsets);
  free(in->repeats);
  tag_rag_input_close(in->rag);
}

/* Free the ids and titles of the pass's n items. */
static void drop_pass(raw_input *in, int n) {
  for (int i = 0; i < n; i++) {
    free(in->ids[i]), in->ids[i] = NULL;
    free(in->title_text[i]), in->title_text[i] = NULL;
  }
}

/* Tag the n items gathered in the pass buffers. */
static int flush(tagger *t, raw_input *in, int n, ot_lines *part) {
  if (n == 0) return OT_OK;
  ot_batch batch;
  memset(&batch, 0, sizeof batch);
  batch.B = n, batch.frames = in->frames, batch.title = in->title, batch.title_mask = in->mask;
  batch.title_words = in->words, batch.title_words_mask = in->words_mask; /* NULL: not generative */
  batch.title_ngram = in->ngram;                                          /* NULL: off */
  int st = in->rag ? tag_rag_input_fill(in->rag, n, in->frames, (const char *const *)in->ids, &batch) : OT_OK;
  if (st == OT_OK)
    st = tag_emit_batch(t, &batch, (const char *const *)in->ids,
                        (const char *const *)in->title_text, part);
  drop_pass(in, n);
  if (st == OT_OK) t->tagged += n;
  return st;
}

/* Write the chunk's parts (errors first: the tag part's presence is not what
 * marks it done, the ledger record is), then its ledger record. */
static int commit_chunk(tagger *t, int64_t u, const ot_lines *part, const ot_lines *errs,
                        int64_t lines, int64_t items, int64_t n_err) {
  char path[4400];
  int st = OT_OK;
  tag_part_path(path, sizeof path, t->out, "errors", u);
  if (n_err) st = ot_fs_write_atomic(path, errs->p, errs->len);
  else if (unlink(path) != 0 && errno != ENOENT) /* stale, from a run that saw errors */
    st = ot_fail(OT_EIO, "cannot remove %s: %s", path, strerror(errno));
  tag_part_path(path, sizeof path, t->out, "part", u);
  if (st == OT_OK) st = ot_fs_write_atomic(path, part->p ? part->p : "", part->len);
  if (st == OT_OK) {
    char rec[160];
    snprintf(rec, sizeof rec, "{\"chunk\": %lld, \"lines\": %lld, \"items\": %lld, \"errors\": %lld}",
             (long long)u, (long long)lines, (long long)items, (long long)n_err);
    st = ot_ledger_mark_done(t->ledger, u, rec);
  }
  return st;
}

static int run_chunk(tagger *t, raw_input *in, int64_t u) {
  const int64_t first_line = u * in->chunk + 1;
  const int64_t n_lines = u + 1 == in->n_chunks ? in->n_lines - u * in->chunk : in->chunk;
  ot_manifest_reader *rd = NULL;
  int st = ot_manifest_reader_open(&rd, in->manifest, in->offsets[u], first_line);
  ot_lines part = {0}, errs = {0};
  int64_t seen = 0, items = 0, n_err = 0, unreported = 0;
  int n = 0; /* items in the pass buffers */
  const char *text;
  int64_t line;
  while (st == OT_OK && seen < n_lines && ot_manifest_reader_next(rd, &text, &line)) {
    seen++, unreported++;
    ot_item it;
    if (ot_manifest_reader_parse(rd, &it) != OT_OK) {
      tag_error_line(&errs, NULL, NULL, ot_errmsg(), line);
      n_err++;
      continue;
    }
    if (ot_manifest_check_unique(in->repeats, in->n_repeats, line) != OT_OK) { /* tags.jsonl has each id once */
      tag_error_line(&errs, it.id, it.path, ot_errmsg(), line);
      n_err++;
      ot_item_free(&it);
      continue;
    }
    char media[8400];
    ot_fs_join(media, sizeof media, in->item_root, it.path);
    int fst = ot_frames_sample(in->fr, media, in->frames + (size_t)n * in->frame_bytes, NULL);
    if (fst == OT_OK) {
      const size_t at = (size_t)n * in->L;
      ot_titles_tokens(in->titles, it.title, in->title + at, in->mask + at);
      if (t->gen) ot_titles_words(in->titles, it.title, in->words + at, in->words_mask + at);
      if (in->D) ot_ngram_vector(it.title, NULL, in->D, in->ngram + (size_t)n * in->D);
      if (in->rag) tag_rag_input_title(in->rag, n, it.title);
      in->ids[n] = it.id, in->title_text[n++] = it.title;
      it.id = it.title = NULL; /* the pass owns them now */
      items++;
    } else if (fst == OT_EMEDIA) {
      tag_error_line(&errs, it.id, it.path, ot_errmsg(), line);
      n_err++;
    } else { /* the job's fault (I/O, memory), but say where it stopped */
      st = ot_fail_ctx(fst, "%s:%lld (item %s, %s)", in->manifest, (long long)line, it.id, media);
    }
    ot_item_free(&it);
    if (st == OT_OK && n == in->B) {
      st = flush(t, in, n, &part);
      n = 0;
      ot_workq_add_done(t->q, unreported);
      unreported = 0;
      ot_progress_update(&t->prog, ot_workq_done(t->q));
    }
  }
  if (st == OT_OK) st = flush(t, in, n, &part);
  else drop_pass(in, n);
  ot_manifest_reader_close(rd);
  if (st == OT_OK && seen != n_lines)
    st = ot_fail(OT_EIO, "%s: expected %lld lines from line %lld, read %lld (changed while running?)",
                 in->manifest, (long long)n_lines, (long long)first_line, (long long)seen);
  if (st == OT_OK) st = commit_chunk(t, u, &part, &errs, n_lines, items, n_err);
  if (st == OT_OK) {
    t->failed += n_err;
    ot_workq_add_done(t->q, unreported);
    ot_progress_update(&t->prog, ot_workq_done(t->q));
  }
  ot_lines_free(&part);
  ot_lines_free(&errs);
  return st;
}

/* Rank 0: tags.jsonl, errors.jsonl and the totals from the ledger. */
static int join(tagger *t, const raw_input *in) {
  int st = tag_join_parts(t->out, "part", in->n_chunks, "tags.jsonl", 0);
  if (st == OT_OK) st = tag_join_parts(t->out, "errors", in->n_chunks, "errors.jsonl", 1);
  for (int64_t u = 0; u < in->n_chunks && st == OT_OK; u++) {
    char *txt = NULL;
    if ((st = ot_ledger_read(t->ledger, u, &txt))) break;
    json_t *rec = json_loads(txt, 0, NULL);
    free(txt);
    if (!rec) { st = ot_fail(OT_EIO, "%s: ledger record %lld unreadable", t->out, (long long)u); break; }
    t->all_tagged += json_integer_value(json_object_get(rec, "items"));
    t->all_failed += json_integer_value(json_object_get(rec, "errors"));
    json_decref(rec);
  }
  return st;
}

int tag_raw_run(tagger *t) {
  const ot_config *cfg = t->cfg;
  raw_input in;
  memset(&in, 0, sizeof in);
  in.manifest = cfg->tag.manifest;
  in.chunk = cfg->tag.chunk;
  int st = ot_mpi_agree(open_input(t, &in));
  if (st == OT_OK) st = scan_manifest(t, &in);
  if (st == OT_OK) {
    /* what shapes the output: checkpoint (its file's version too: a training
     * continued rewrites final.h5 under its name), input, threshold, top_k,
     * chunking (part numbering), frame sampling and, for rag, the retrieval */
    char fp[18000];
    snprintf(fp, sizeof fp, "raw|%s|%016" PRIx64 "|%s|%lld|%lld|%.9g|%d|%lld|%d%s%s", t->inf.ckpt,
             ot_fs_version_hash(t->inf.ckpt, OT_FNV64_INIT), in.manifest, (long long)in.n_lines,
             (long long)in.size, t->threshold, cfg->tag.top_k, (long long)in.chunk, (int)in.resize,
             tag_decode_mark(t), in.rag ? tag_rag_input_describe(in.rag) : "");
    st = tag_open_ledger(t, ot_fnv1a64(fp, strlen(fp), OT_FNV64_INIT), in.n_chunks);
  }
  if (st == OT_OK) st = ot_workq_open(&t->q, in.n_chunks);
  if (st == OT_OK) {
    t->total = in.n_lines;
    int64_t already = 0;
    for (int64_t u = 0; u < in.n_chunks; u++)
      if (ot_ledger_is_done(t->ledger, u))
        already += u + 1 == in.n_chunks ? in.n_lines - u * in.chunk : in.chunk;
    ot_log_info0("tagging %lld manifest lines of %s (%lld chunks, %lld lines already done) with %s: "
                 "%d frame(s) %dx%d %s, threshold %.3f", (long long)in.n_lines, in.manifest,
                 (long long)in.n_chunks, (long long)already, t->inf.ckpt, t->inf.meta.T, t->inf.meta.H,
                 t->inf.meta.W, in.resize == OT_RESIZE_CROP ? "crop" : "letterbox", t->threshold);
    if (in.rag)
      ot_log_info0("rag: candidates retrieved per pass with the encoder %s", tag_rag_input_encoder(in.rag));
    ot_progress_start(&t->prog, "items", t->total, already);
    if (ot_mpi_rank() == 0) ot_workq_add_done(t->q, already);
    t->t_work = ot_now();
    t->cpu_work = tag_cpu_now();
    int local = OT_OK;
    int64_t u;
    while (local == OT_OK && (u = ot_workq_next(t->q)) >= 0)
      if (!ot_ledger_is_done(t->ledger, u)) local = run_chunk(t, &in, u);
    if (local) ot_log_error("%s", ot_errmsg());
    MPI_Barrier(MPI_COMM_WORLD);
    ot_progress_finish(&t->prog, ot_workq_done(t->q));
    st = ot_mpi_agree(local);
    if (st == OT_OK) st = ot_mpi_agree(ot_mpi_rank() == 0 ? join(t, &in) : OT_OK);
  }
  close_input(&in);
  return st;
}
