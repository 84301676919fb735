#include "answer.h"

#include "ot_cand.h"
#include "ot_common.h"
#include "ot_emb.h"
#include "ot_fs.h"
#include "ot_log.h"
#include "tagnorm.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  ot_emb_set *es = NULL;
  char of[4300];
  ot_fs_join(of, sizeof of, embed_dir, split);
  int st = ot_emb_set_open(&es, embed_dir, split);
  if (!st) st = ot_cand_check_files(retrieve_dir, split, ot_emb_set_files(es), of, "embedding files");
  /* candidates file f holds the items of embedding file f: one at a time */
  for (int f = 0; !st && f < ot_emb_set_files(es); f++) {
    ot_emb *e = NULL;
    ot_cand_set *cs = NULL;
    if ((st = ot_cand_load_split_part(&cs, retrieve_dir, split, f))) break;
    if ((st = ot_emb_open(&e, ot_emb_set_file_path(es, f)))) {
      ot_cand_close(cs);
      break;
    }
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
    ot_cand_close(cs);
  }
  ot_emb_set_close(es);
  return st;
}

/* File `part` of the split's candidates as tags.jsonl lines to out:
 * candidates whose bin reaches `bin`. */
static int write_part(FILE *out, const char *tmp, const char *retrieve_dir, const char *split, int part,
                      double max_fused, int bin) {
  ot_cand_set *cs = NULL;
  int st = ot_cand_load_split_part(&cs, retrieve_dir, split, part);
  for (int64_t i = 0; !st && i < ot_cand_count(cs); i++) {
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
    if (fputs(txt, out) == EOF || fputc('\n', out) == EOF)
      st = ot_fail(OT_EIO, "%s: write failed: %s", tmp, strerror(errno));
    free(txt);
  }
  ot_cand_close(cs);
  return st;
}

/* <retrieve_dir>/<split>/tags.jsonl, written a candidates file at a time
 * (a split's lines may not fit in memory) and committed atomically. */
static int write_tags(const char *retrieve_dir, const char *split, double max_fused, int bin) {
  int n_files = 0;
  int st = ot_cand_split_files(retrieve_dir, split, &n_files);
  if (st) return st;
  char dir[4200], path[4300], tmp[4400];
  ot_fs_join(dir, sizeof dir, retrieve_dir, split);
  snprintf(path, sizeof path, "%s/tags.jsonl", dir);
  ot_fs_tmpname(tmp, sizeof tmp, path);
  FILE *out = fopen(tmp, "wb");
  if (!out) return ot_fail(OT_EIO, "%s: cannot create: %s", tmp, strerror(errno));
  for (int f = 0; f < n_files && !st; f++) st = write_part(out, tmp, retrieve_dir, split, f, max_fused, bin);
  if (fclose(out) != 0 && !st) st = ot_fail(OT_EIO, "%s: write failed: %s", tmp, strerror(errno));
  if (!st) st = ot_fs_commit(tmp, path);
  if (st) unlink(tmp);
  else ot_log_info("wrote %s", path);
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
    char path[4300];
    snprintf(path, sizeof path, "%s/threshold.json", retrieve_dir);
    st = ot_fs_write_json(path, root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
  }
  json_decref(root);
  return st;
}
