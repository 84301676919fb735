/* ot-tag's output: one JSON line per item,
 *   {"id": "...", "tags": [{"tag": "...", "score": 0.93, "source": "cls"}, ...]}
 * Closed-set models (bin, asl) emit the vocabulary tags whose probability
 * passes the threshold, best first, at most tag.top_k ("source": "cls");
 * generative models (baseline, opg) their generated tags whose score passes
 * it ("source": "gen"); rag the fused answer (ot_gen_fuse): generated tags
 * ("gen"), retrieved candidates it did not write ("ret") and, with a title
 * lexicon (ot_gen_fuse_title), pieces of the title neither proposed
 * ("title"), by fused score. Error records: ot_manifest_error_record's. */
#include "tagger.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_log.h"
#include "ot_loss.h"
#include "ot_manifest.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int by_score(const void *a, const void *b) {
  const tag_scored *x = a, *y = b;
  if (x->p != y->p) return x->p < y->p ? 1 : -1;
  return x->k - y->k; /* deterministic among ties */
}

static void add_line(ot_lines *out, json_t *line) {
  char *txt = json_dumps(line, JSON_COMPACT);
  json_decref(line);
  ot_lines_add(out, txt);
  free(txt);
}

/* The vocabulary tags of one item's logits that pass the threshold. */
static void cls_line(tagger *t, const char *id, const float *logits, ot_lines *out) {
  int n = 0;
  for (int k = 0; k < t->inf.meta.tags.n; k++) {
    const float p = ot_sigmoid(logits[k]);
    if (p >= t->threshold) t->scratch[n++] = (tag_scored){k, p};
  }
  qsort(t->scratch, (size_t)n, sizeof *t->scratch, by_score);
  if (n > t->cfg->tag.top_k) n = t->cfg->tag.top_k;
  json_t *tags = json_array();
  for (int i = 0; i < n; i++)
    json_array_append_new(tags, json_pack("{s:s, s:f, s:s}", "tag", t->inf.meta.tags.tags[t->scratch[i].k],
                                          "score", (double)t->scratch[i].p, "source", "cls"));
  add_line(out, json_pack("{s:s, s:o}", "id", id, "tags", tags));
}

/* One item's generated tags (already best first) that pass the threshold. */
static void gen_line(const tagger *t, const char *id, const ot_gen_item *g, ot_lines *out) {
  json_t *tags = json_array();
  for (int i = 0, kept = 0; i < g->n && kept < t->cfg->tag.top_k; i++) {
    if (g->tags[i].score < t->threshold) continue;
    json_array_append_new(tags, json_pack("{s:s, s:f, s:s}", "tag", g->tags[i].tag, "score",
                                          (double)g->tags[i].score, "source",
                                          g->tags[i].title_only ? "title"
                                          : g->tags[i].ret_only ? "ret"
                                                                : "gen"));
    kept++;
  }
  add_line(out, json_pack("{s:s, s:o}", "id", id, "tags", tags));
}

/* rag: item i's answer, generation fused with retrieval and the title lexicon. */
static int rag_answer(const tagger *t, const ot_batch *batch, int i, const char *title,
                      ot_gen_item *out) {
  ot_gen_item fused;
  int st = ot_gen_fuse(&t->g[i], batch, i, (float)t->ret_weight, &fused);
  const ot_lexicon *lx = &t->inf.meta.lexicon;
  if (st || !lx->max_units) {
    *out = fused;
    return st;
  }
  ot_lexicon_hits hits;
  if ((st = ot_lexicon_lookup(lx, title, &hits)) == OT_OK) {
    /* the ratios only matter at an exponent above 0 (ot_gen_fuse_title) */
    float *absent = t->abs_weight > 0 ? ot_xmalloc(((size_t)fused.n + 1) * sizeof *absent) : NULL;
    if (absent) ot_lexicon_absence(lx, &hits, &fused, absent);
    ot_gen_fuse_title(&fused, absent, (float)t->abs_weight, (const char *const *)hits.text,
                      hits.score, hits.n, (float)t->lex_weight, out);
    free(absent);
  } else {
    *out = (ot_gen_item){0, NULL};
  }
  ot_lexicon_hits_free(&hits);
  ot_gen_items_free(&fused, 1);
  return st;
}

int tag_emit_batch(tagger *t, const ot_batch *batch, const char *const *ids,
                   const char *const *titles, ot_lines *out) {
  const int n = batch->B;
  if (t->gen) {
    /* every prompt decodes: the score threshold tuned on val was chosen so */
    const ot_gen_opts opts = {.bpe = t->inf.bpe, .threshold = 0.0f, .beam = t->cfg->tag.beam,
                              .no_cache = !t->cfg->tag.kv_cache};
    int st = ot_model_generate(t->inf.model, batch, &opts, t->g);
    const int rag = t->cfg->model.type == OT_MODEL_RAG;
    for (int i = 0; i < n && st == OT_OK; i++) {
      ot_gen_item fused = {0, NULL};
      if (rag) st = rag_answer(t, batch, i, titles[i], &fused);
      if (st == OT_OK) gen_line(t, ids[i], rag ? &fused : &t->g[i], out);
      ot_gen_items_free(&fused, 1);
    }
    ot_gen_items_free(t->g, n);
    return st;
  }
  int st = ot_model_forward(t->inf.model, batch, 0, 0, NULL);
  if (st) return st;
  const float *logits = ot_model_logits(t->inf.model);
  for (int i = 0; i < n; i++) cls_line(t, ids[i], logits + (size_t)i * t->inf.meta.tags.n, out);
  return OT_OK;
}

void tag_error_line(ot_lines *out, const char *id, const char *path, const char *reason,
                    int64_t line) {
  add_line(out, ot_manifest_error_record(line, id, path, reason));
}

void tag_part_path(char *buf, size_t cap, const char *dir, const char *prefix, int64_t unit) {
  snprintf(buf, cap, "%s/%s-%06lld.jsonl", dir, prefix, (long long)unit);
}

int tag_join_parts(const char *dir, const char *prefix, int64_t n_units, const char *dest,
                   int optional) {
  char path[4400], tmp[4500];
  snprintf(path, sizeof path, "%s/%s", dir, dest);
  ot_fs_tmpname(tmp, sizeof tmp, path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return ot_fail(OT_EIO, "%s: cannot create: %s", tmp, strerror(errno));
  int st = OT_OK;
  for (int64_t u = 0; u < n_units && st == OT_OK; u++) {
    char part[4400], *data = NULL;
    size_t n = 0;
    tag_part_path(part, sizeof part, dir, prefix, u);
    if (optional && !ot_fs_exists(part)) continue;
    if ((st = ot_fs_read_all(part, &data, &n))) break;
    if (n && fwrite(data, 1, n, f) != n) st = ot_fail(OT_EIO, "%s: write failed: %s", tmp, strerror(errno));
    free(data);
  }
  if (fclose(f) != 0 && st == OT_OK) st = ot_fail(OT_EIO, "%s: write failed: %s", tmp, strerror(errno));
  if (st == OT_OK) st = ot_fs_commit(tmp, path);
  else remove(tmp);
  if (st == OT_OK) ot_log_info("wrote %s", path);
  return st;
}
