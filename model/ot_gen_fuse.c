/* rag's answer: generated tags fused with the retrieved candidates the
 * decoder read (ot_gen_fuse in ot_model.h). */
#include "ot_model.h"
#include "ot_model_impl.h"

#include "ot_common.h"
#include "tagnorm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int find(const ot_gen_item *it, const char *text) {
  for (int i = 0; i < it->n; i++)
    if (!strcmp(it->tags[i].tag, text)) return i;
  return -1;
}

int ot_gen_fuse(const ot_gen_item *gen, const ot_batch *batch, int b, float w, ot_gen_item *out) {
  OT_ASSERT(b >= 0 && b < batch->B && w >= 0.0f && w <= 1.0f);
  *out = (ot_gen_item){0, NULL};
  if (!batch->cand_item || !batch->cand_text || !batch->cand_score)
    return ot_fail(OT_EINVAL, "model: fusing with retrieval needs the batch's candidates");
  const int c0 = batch->cand_item[b], c1 = batch->cand_item[b + 1];
  /* Every distinct text once: the generated ones first (their order), then
   * candidates not generated. At most gen->n + (c1 - c0) tags. */
  ot_gen_item all = {0, ot_xcalloc((size_t)(gen->n + (c1 - c0)) + 1, sizeof(ot_gen_tag))};
  for (int i = 0; i < gen->n; i++) {
    all.tags[all.n] = gen->tags[i];
    all.tags[all.n++].tag = ot_xstrdup(gen->tags[i].tag);
  }
  int st = OT_OK;
  for (int j = c0; j < c1 && st == OT_OK; j++) {
    char *text = NULL;
    if ((st = ot_tagnorm_dup(batch->cand_text[j], &text))) {
      st = ot_fail(OT_EINVAL, "model: retrieved candidate %d of item %d: %s", j - c0, b, ot_errmsg());
      break;
    }
    if (!text[0]) { free(text); continue; }
    const float s = batch->cand_score[j];
    int i = find(&all, text);
    if (i < 0) {
      all.tags[all.n++] = (ot_gen_tag){.tag = text, .ret_score = s, .ret_only = 1};
      continue;
    }
    free(text);
    if (s > all.tags[i].ret_score) all.tags[i].ret_score = s;
  }
  if (st) { ot_gen_items_free(&all, 1); return st; }
  int kept = 0;
  for (int i = 0; i < all.n; i++) {
    ot_gen_tag *t = &all.tags[i];
    const float gen_score = t->ret_only ? 0.0f : t->score;
    t->score = (1.0f - w) * gen_score + w * t->ret_score;
    if (!t->ret_only || t->score > 0.0f) all.tags[kept++] = *t;
    else free(t->tag);
  }
  all.n = kept;
  if (all.n > 1) qsort(all.tags, (size_t)all.n, sizeof *all.tags, ot_gen_tag_by_score);
  *out = all;
  return OT_OK;
}

void ot_gen_fuse_title(const ot_gen_item *in, const float *absent, float a,
                       const char *const *text, const float *score, int n, float w,
                       ot_gen_item *out) {
  OT_ASSERT(n >= 0 && w >= 0.0f && w <= OT_GEN_TITLE_WEIGHT_MAX && a >= 0.0f);
  ot_gen_item all = {0, ot_xcalloc((size_t)(in->n + n) + 1, sizeof(ot_gen_tag))};
  for (int i = 0; i < in->n; i++) {
    all.tags[all.n] = in->tags[i];
    all.tags[all.n].tag = ot_xstrdup(in->tags[i].tag);
    if (absent && a > 0.0f && absent[i] < 1.0f) all.tags[all.n].score *= powf(absent[i], a);
    all.n++;
  }
  for (int j = 0; j < n; j++) {
    const float s = fminf(1.0f, w * score[j]);
    int i = find(&all, text[j]);
    if (i >= 0) {
      if (s > all.tags[i].score) all.tags[i].score = s;
    } else if (s > 0.0f) {
      all.tags[all.n++] = (ot_gen_tag){.tag = ot_xstrdup(text[j]), .score = s, .title_only = 1};
    }
  }
  if (all.n > 1) qsort(all.tags, (size_t)all.n, sizeof *all.tags, ot_gen_tag_by_score);
  *out = all;
}
