/* Items of the emoji benchmark: one per (emoji, vendor) image, split by
 * base emoji; and the deterministic pick of items rendered as clips. */
#include "ot_emoji.h"

#include "ot_common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ot_hash.h"

const char *const ot_emoji_split_names[OT_EMOJI_NSPLITS] = {"train", "val", "test"};

int ot_emoji_split_of(const char *group) {
  uint32_t r = ot_fnv1a32(group, strlen(group)) % 100u;
  return r < 80 ? OT_EMOJI_TRAIN : r < 85 ? OT_EMOJI_VAL : OT_EMOJI_TEST;
}

static int is_png(const char *path) {
  static const unsigned char magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  unsigned char head[8];
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t got = fread(head, 1, sizeof head, f);
  fclose(f);
  return got == sizeof head && memcmp(head, magic, sizeof magic) == 0;
}

static int cmp_item(const void *a, const void *b) {
  return strcmp(((const ot_emoji_item *)a)->id, ((const ot_emoji_item *)b)->id);
}

/* The concatenation of the strings up to the NULL; the caller frees it.
 * (Plain concatenation: GCC 12 with -fsanitize=undefined warns wrongly on a
 * vsnprintf-based helper.) */
__attribute__((sentinel)) static char *str_cat(const char *first, ...) {
  va_list ap;
  size_t n = 0;
  va_start(ap, first);
  for (const char *p = first; p; p = va_arg(ap, const char *)) n += strlen(p);
  va_end(ap);
  char *s = ot_xmalloc(n + 1), *o = s;
  va_start(ap, first);
  for (const char *p = first; p; p = va_arg(ap, const char *)) {
    size_t k = strlen(p);
    memcpy(o, p, k);
    o += k;
  }
  va_end(ap);
  *o = '\0';
  return s;
}

int ot_emoji_items_build(ot_emoji_items *out, const ot_emoji_base *base,
                         ot_emoji_images *const *images, const char *npm_dir,
                         const char *path_prefix, const char *const *vendors, int n_vendors) {
  OT_ASSERT(n_vendors > 0 && n_vendors <= OT_EMOJI_MAX_VENDORS);
  memset(out, 0, sizeof *out);
  out->missing_hex = json_object();
  json_t *miss[OT_EMOJI_MAX_VENDORS];
  for (int v = 0; v < n_vendors; v++) {
    miss[v] = json_array();
    json_object_set_new(out->missing_hex, vendors[v], miss[v]);
  }
  size_t cap = base->n * (size_t)n_vendors;
  out->items = ot_xcalloc(cap ? cap : 1, sizeof *out->items);
  for (size_t i = 0; i < base->n; i++) {
    const ot_emoji_entry *e = &base->entries[i];
    for (int v = 0; v < n_vendors; v++) {
      const ot_emoji_image *img = ot_emoji_images_find(images[v], e->hexcode);
      int present = img && img->has_img;
      char *file = NULL;
      if (present) {
        file = str_cat(npm_dir, "/emoji-datasource-", vendors[v], "/img/", vendors[v], "/64/",
                       img->image, (char *)NULL);
        present = is_png(file);
        free(file);
      }
      if (!present) {
        out->missing[v]++;
        json_array_append_new(miss[v], json_string(e->hexcode));
        continue;
      }
      ot_emoji_item *it = &out->items[out->n++];
      it->id = str_cat(e->hexcode, "-", vendors[v], (char *)NULL);
      it->path = str_cat(path_prefix, "emoji-datasource-", vendors[v], "/img/", vendors[v], "/64/",
                         img->image, (char *)NULL);
      it->title = e->label;
      it->tags = e->tags;
      it->group = e->group;
      it->split = ot_emoji_split_of(e->group);
    }
  }
  qsort(out->items, out->n, sizeof *out->items, cmp_item);
  for (size_t k = 1; k < out->n; k++)
    if (strcmp(out->items[k - 1].id, out->items[k].id) == 0) {
      int st = ot_fail(OT_EINVAL, "emojibase lists hexcode of item %s twice", out->items[k].id);
      ot_emoji_items_free(out);
      return st;
    }
  return OT_OK;
}

void ot_emoji_items_free(ot_emoji_items *it) {
  if (!it) return;
  for (size_t i = 0; i < it->n; i++) {
    free(it->items[i].id);
    free(it->items[i].path);
  }
  free(it->items);
  json_decref(it->missing_hex);
  memset(it, 0, sizeof *it);
}

const ot_emoji_item *ot_emoji_items_find(const ot_emoji_items *it, const char *id) {
  ot_emoji_item probe = {0};
  probe.id = (char *)id;
  return bsearch(&probe, it->items, it->n, sizeof *it->items, cmp_item);
}

/* murmur3's finaliser: spreads FNV's weak low bits over the whole word, so
 * the clip parameters below are not correlated with each other. */
static uint32_t mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

size_t ot_emoji_clips_pick(ot_emoji_clip **out, const ot_emoji_items *items, size_t n_clips) {
  static const int fps_choices[] = {15, 20, 24, 25, 30};
  static const uint32_t backgrounds[] = {0xF4E1C1, 0xD6EAF8, 0xE8F6E1, 0xFDE2E4, 0xEEEEEE, 0xFFF5BA};
  size_t n = n_clips < items->n ? n_clips : items->n;
  ot_emoji_clip *c = ot_xcalloc(n ? n : 1, sizeof *c);
  for (size_t i = 0; i < n; i++) {
    /* Evenly spaced over the id order: i * total / n, exact in 64 bits. */
    const ot_emoji_item *it = &items->items[(size_t)((uint64_t)i * items->n / n)];
    uint32_t h = mix32(ot_fnv1a32(it->id, strlen(it->id)));
    c[i].item = it;
    c[i].fps = fps_choices[h % 5];
    h /= 5;
    c[i].seconds = 2 + (int)(h % 3);
    h /= 3;
    c[i].width = h % 2 ? 160 : 128;
    c[i].height = h % 2 ? 120 : 128;
    h /= 2;
    c[i].motion = (int)(h % 4);
    h /= 4;
    c[i].background = backgrounds[h % 6];
  }
  *out = c;
  return n;
}
