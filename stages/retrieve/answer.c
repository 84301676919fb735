#include "answer.h"

#include "ot_cand.h"
#include "ot_common.h"
#include "ot_emb.h"
#include "ot_fs.h"
#include "ot_log.h"
#include "tagnorm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Normalised copies of tags[n] without duplicates (ot_tagnorm_unique;
 * malloc'd; *out_n; first as there). */
static char **norm_unique(const char *const *tags, int n, int *out_n, int *first) {
  char **v = ot_xcalloc((size_t)n + 1, sizeof *v);
  *out_n = ot_tagnorm_unique(tags, n, v, first);
  return v;
}

static void free_list(char **v, int n) {
  for (int i = 0; i < n; i++) free(v[i]);
  free(v);
}

int ot_answer_hist(ot_f1_hist *h, const char *retrieve_dir, const char *embed_dir, const char *split,
                   double max_fused) {
  memset(h, 0, sizeof *h);
  ot_cand_set *cs = NULL;
  ot_emb_set *es = NULL;
  int st = ot_cand_load_split(&cs, retrieve_dir, split);
  if (!st) st = ot_emb_set_open(&es, embed_dir, split);
  for (int f = 0; !st && f < ot_emb_set_files(es); f++) {
    ot_emb *e = NULL;
    if ((st = ot_emb_open(&e, ot_emb_set_file_path(es, f)))) break;
    for (int64_t i = 0; i < ot_emb_count(e) && !st; i++) {
      const char *const *cand, *const *truth;
      const float *score;
      int nc, nt, ntu, ncu;
      if ((st = ot_cand_find(cs, ot_emb_id(e, i), &cand, &score, &nc))) break;
      ot_emb_tags(e, i, &truth, &nt);
      char **tu = norm_unique(truth, nt, &ntu, NULL);
      int *first = ot_xmalloc((size_t)(nc > 0 ? nc : 1) * sizeof *first);
      char **cu = norm_unique(cand, nc, &ncu, first); /* a repeated candidate: its first score */
      int hit = 0;
      for (int c = 0; c < ncu; c++) {
        int pos = 0;
        for (int j = 0; j < ntu && !pos; j++) pos = !strcmp(tu[j], cu[c]);
        int b = ot_f1_bin_prob(score[first[c]] / max_fused);
        if (pos) h->pos[b]++, hit++;
        else h->neg[b]++;
      }
      h->missed += ntu - hit;
      free(first);
      free_list(tu, ntu);
      free_list(cu, ncu);
    }
    ot_emb_close(e);
  }
  ot_cand_close(cs);
  ot_emb_set_close(es);
  return st;
}

/* <retrieve_dir>/<split>/tags.jsonl: candidates whose bin reaches `bin`. */
static int write_tags(const char *retrieve_dir, const char *split, double max_fused, int bin) {
  ot_cand_set *cs = NULL;
  int st = ot_cand_load_split(&cs, retrieve_dir, split);
  if (st) return st;
  ot_lines out = {0};
  for (int64_t i = 0; i < ot_cand_count(cs); i++) {
    const char *id;
    const char *const *tags;
    const float *score;
    int n;
    ot_cand_item(cs, i, &id, &tags, &score, NULL, &n);
    json_t *arr = json_array();
    for (int c = 0; c < n; c++)
      if (ot_f1_bin_prob(score[c] / max_fused) >= bin)
        json_array_append_new(arr, json_pack("{s:s, s:f, s:s}", "tag", tags[c], "score", (double)score[c],
                                             "source", "ret"));
    json_t *line = json_pack("{s:s, s:o}", "id", id, "tags", arr);
    char *txt = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    ot_lines_add(&out, txt);
    free(txt);
  }
  ot_cand_close(cs);
  char dir[4200], path[4300];
  ot_fs_join(dir, sizeof dir, retrieve_dir, split);
  snprintf(path, sizeof path, "%s/tags.jsonl", dir);
  st = ot_fs_write_atomic(path, out.p ? out.p : "", out.len);
  if (!st) ot_log_info("wrote %s", path);
  ot_lines_free(&out);
  return st;
}

int ot_answer_write_all(const char *retrieve_dir, const char *embed_dir, const char *splits, double consensus,
                        int n_sources) {
  const double max_fused = 1.0 + consensus * (n_sources - 1);
  char *list = ot_xstrdup(splits), *save = NULL;
  int has_val = 0, st = OT_OK;
  for (char *sp = strtok_r(list, ", ", &save); sp; sp = strtok_r(NULL, ", ", &save)) has_val |= !strcmp(sp, "val");
  free(list);
  ot_f1_result best = {.threshold = 0.0};
  int bin = 0;
  json_t *root = json_object();
  if (has_val) {
    ot_f1_hist *h = ot_xmalloc(sizeof *h);
    st = ot_answer_hist(h, retrieve_dir, embed_dir, "val", max_fused);
    if (!st) {
      ot_f1_best(h, &best);
      bin = ot_f1_bin_prob(best.threshold);
      ot_log_info("retrieval alone on val: threshold %.4f (fused), P %.4f R %.4f F1 %.4f",
                  best.threshold * max_fused, best.precision, best.recall, best.f1);
      json_object_set_new(root, "val", json_pack("{s:f, s:f, s:f}", "precision", best.precision, "recall",
                                                 best.recall, "f1", best.f1));
    }
    free(h);
  } else {
    ot_log_warn("val is not among retrieve.splits: retrieval alone keeps every candidate (no threshold)");
  }
  json_object_set_new(root, "threshold", json_real(best.threshold * max_fused));
  json_object_set_new(root, "max_score", json_real(max_fused));
  list = ot_xstrdup(splits);
  for (char *sp = strtok_r(list, ", ", &save); sp && !st; sp = strtok_r(NULL, ", ", &save))
    st = write_tags(retrieve_dir, sp, max_fused, bin);
  free(list);
  if (!st) {
    char path[4300], *txt = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    snprintf(path, sizeof path, "%s/threshold.json", retrieve_dir);
    st = ot_fs_write_atomic(path, txt, strlen(txt));
    free(txt);
  }
  json_decref(root);
  return st;
}
