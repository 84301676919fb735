/* Files written by ot-emoji-data: manifests, the clip plan, statistics for
 * the summary. Every file is written whole to a temp name and renamed. */
#include "ot_emoji.h"

#include "ot_common.h"
#include "ot_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* One manifest line to be: an item and the media path it is shown with. */
typedef struct {
  const ot_emoji_item *item;
  char *path; /* owned */
} line_view;

/* The lines of a benchmark: every item, or, for the video variant, the
 * clips' items looked up in `items` (the zh items for the zh benchmark).
 * Returns the count; *out is freed with views_free. */
static size_t views_make(line_view **out, const ot_emoji_items *items, const ot_emoji_clip *clips,
                         size_t n_clips) {
  size_t n = clips ? n_clips : items->n, k = 0;
  line_view *v = ot_xcalloc(n ? n : 1, sizeof *v);
  for (size_t i = 0; i < n; i++) {
    const ot_emoji_item *it = clips ? ot_emoji_items_find(items, clips[i].item->id) : &items->items[i];
    if (!it) continue; /* the other language has no entry for this emoji */
    v[k].item = it;
    if (clips) {
      size_t len = strlen(it->id) + sizeof "clips/.mp4";
      v[k].path = ot_xmalloc(len);
      snprintf(v[k].path, len, "clips/%s.mp4", it->id);
    } else {
      v[k].path = ot_xstrdup(it->path);
    }
    k++;
  }
  *out = v;
  return k;
}

static void views_free(line_view *v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i].path);
  free(v);
}

int ot_emoji_write_manifests(const char *dir, const char *bench, const ot_emoji_items *items,
                             const ot_emoji_clip *clips, size_t n_clips) {
  line_view *views;
  size_t n = views_make(&views, items, clips, n_clips);
  int st = OT_OK;
  for (int s = 0; s < OT_EMOJI_NSPLITS && st == OT_OK; s++) {
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    if (!mem) { st = ot_fail(OT_ENOMEM, "open_memstream failed"); break; }
    for (size_t i = 0; i < n; i++) {
      const ot_emoji_item *it = views[i].item;
      if (it->split != s) continue;
      json_t *o = json_object();
      json_object_set_new(o, "id", json_string(it->id));
      json_object_set_new(o, "path", json_string(views[i].path));
      json_object_set_new(o, "title", json_string(it->title));
      json_object_set(o, "tags", it->tags);
      json_object_set_new(o, "group", json_string(it->group));
      /* Default flags: UTF-8 unescaped, ", " and ": " separators, one line. */
      char *line = json_dumps(o, 0);
      OT_ASSERT(line);
      fputs(line, mem);
      fputc('\n', mem);
      free(line);
      json_decref(o);
    }
    fclose(mem);
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s.jsonl", dir, bench, ot_emoji_split_names[s]);
    st = ot_fs_write_atomic(path, buf, len);
    free(buf);
  }
  views_free(views, n);
  return st;
}

int ot_emoji_write_clip_plan(const char *dir, const ot_emoji_clip *clips, size_t n_clips) {
  char path[4096];
  snprintf(path, sizeof path, "%s/clips", dir);
  if (mkdir(path, 0755) != 0 && errno != EEXIST)
    return ot_fail(OT_EIO, "%s: cannot create folder: %s", path, strerror(errno));
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  if (!mem) return ot_fail(OT_ENOMEM, "open_memstream failed");
  for (size_t i = 0; i < n_clips; i++) {
    const ot_emoji_clip *c = &clips[i];
    fprintf(mem, "clips/%s.mp4\t%s\t%d\t%d\t%d\t%d\t%d\t%06X\n", c->item->id, c->item->path,
            c->width, c->height, c->fps, c->fps * c->seconds, c->motion, (unsigned)c->background);
  }
  fclose(mem);
  snprintf(path, sizeof path, "%s/clips/plan.tsv", dir);
  int st = ot_fs_write_atomic(path, buf, len);
  free(buf);
  return st;
}

/* ---- statistics ------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sort s[0..n) and drop duplicates in place; returns the unique count. */
static size_t sort_unique(const char **s, size_t n) {
  if (n == 0) return 0;
  qsort(s, n, sizeof *s, cmp_str);
  size_t k = 1;
  for (size_t i = 1; i < n; i++)
    if (strcmp(s[i], s[k - 1]) != 0) s[k++] = s[i];
  return k;
}

static double round3(double x) { return round(x * 1000.0) / 1000.0; }

json_t *ot_emoji_bench_stats(const ot_emoji_items *items, const ot_emoji_clip *clips,
                             size_t n_clips, const char *const *vendors, int n_vendors,
                             int with_missing) {
  line_view *views;
  size_t n = views_make(&views, items, clips, n_clips);
  size_t n_tags_total = 0;
  for (size_t i = 0; i < n; i++) n_tags_total += json_array_size(views[i].item->tags);
  const char **tags[OT_EMOJI_NSPLITS], **groups[OT_EMOJI_NSPLITS];
  size_t nt[OT_EMOJI_NSPLITS] = {0}, ng[OT_EMOJI_NSPLITS] = {0}, ni[OT_EMOJI_NSPLITS] = {0};
  for (int s = 0; s < OT_EMOJI_NSPLITS; s++) {
    tags[s] = ot_xmalloc((n_tags_total ? n_tags_total : 1) * sizeof **tags);
    groups[s] = ot_xmalloc((n ? n : 1) * sizeof **groups);
  }
  for (size_t i = 0; i < n; i++) {
    const ot_emoji_item *it = views[i].item;
    int s = it->split;
    ni[s]++;
    groups[s][ng[s]++] = it->group;
    size_t k;
    json_t *t;
    json_array_foreach(it->tags, k, t) tags[s][nt[s]++] = json_string_value(t);
  }
  json_t *st = json_object(), *splits = json_object();
  json_object_set_new(st, "items", json_integer((json_int_t)n));
  json_object_set_new(st, "mean_tags", json_real(n ? round3((double)n_tags_total / (double)n) : 0));
  for (int s = 0; s < OT_EMOJI_NSPLITS; s++) {
    size_t split_tags = nt[s];
    json_t *o = json_object();
    json_object_set_new(o, "items", json_integer((json_int_t)ni[s]));
    json_object_set_new(o, "groups", json_integer((json_int_t)sort_unique(groups[s], ng[s])));
    nt[s] = sort_unique(tags[s], nt[s]);
    json_object_set_new(o, "unique_tags", json_integer((json_int_t)nt[s]));
    json_object_set_new(o, "mean_tags",
                        json_real(ni[s] ? round3((double)split_tags / (double)ni[s]) : 0));
    json_object_set_new(splits, ot_emoji_split_names[s], o);
  }
  json_object_set_new(st, "splits", splits);
  size_t unseen = 0;
  for (size_t i = 0; i < nt[OT_EMOJI_TEST]; i++)
    if (!bsearch(&tags[OT_EMOJI_TEST][i], tags[OT_EMOJI_TRAIN], nt[OT_EMOJI_TRAIN], sizeof(char *),
                 cmp_str))
      unseen++;
  json_object_set_new(st, "test_tags_unseen_in_train", json_integer((json_int_t)unseen));
  json_object_set_new(st, "test_tags_unseen_share",
                      json_real(nt[OT_EMOJI_TEST] ? round3((double)unseen / (double)nt[OT_EMOJI_TEST]) : 0));
  if (with_missing) {
    json_t *m = json_object();
    for (int v = 0; v < n_vendors; v++) json_object_set_new(m, vendors[v], json_integer((json_int_t)items->missing[v]));
    json_object_set_new(st, "missing_images", m);
  }
  for (int s = 0; s < OT_EMOJI_NSPLITS; s++) {
    free(tags[s]);
    free(groups[s]);
  }
  views_free(views, n);
  return st;
}
