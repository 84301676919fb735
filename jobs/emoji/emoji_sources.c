/* Reading the npm sources: emoji-datasource's emoji.json (images) and
 * emojibase-data's <lang>/data.json (labels, tags). */
#include "ot_emoji.h"

#include "ot_common.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HEX_CAP 256

/* The '-'-separated code points of hexcode that keep() accepts, uppercased
 * and '-'-joined into out (cap bytes). */
static int hex_filter(char *out, size_t cap, const char *hexcode, int (*keep)(const char *part)) {
  size_t o = 0;
  const char *p = hexcode;
  while (*p) {
    char part[16];
    size_t n = 0;
    while (p[n] && p[n] != '-') n++;
    if (n == 0 || n >= sizeof part) return ot_fail(OT_EINVAL, "malformed hexcode '%s'", hexcode);
    for (size_t i = 0; i < n; i++) {
      if (!isxdigit((unsigned char)p[i])) return ot_fail(OT_EINVAL, "malformed hexcode '%s'", hexcode);
      part[i] = (char)toupper((unsigned char)p[i]);
    }
    part[n] = '\0';
    if (keep(part)) {
      size_t need = (o ? 1 : 0) + n + 1;
      if (o + need > cap) return ot_fail(OT_EINVAL, "hexcode too long: '%s'", hexcode);
      if (o) out[o++] = '-';
      memcpy(out + o, part, n + 1);
      o += n;
    }
    p += n;
    if (*p == '-') p++;
  }
  if (cap == 0) return ot_fail(OT_EINVAL, "no room for hexcode '%s'", hexcode);
  out[o] = '\0';
  return OT_OK;
}

static int not_fe0f(const char *part) { return strcmp(part, "FE0F") != 0; }

static int not_skin_tone(const char *part) {
  static const char *const tones[] = {"1F3FB", "1F3FC", "1F3FD", "1F3FE", "1F3FF"};
  for (size_t i = 0; i < sizeof tones / sizeof *tones; i++)
    if (strcmp(part, tones[i]) == 0) return 0;
  return 1;
}

int ot_emoji_hex_normalise(char *out, size_t cap, const char *hexcode) {
  return hex_filter(out, cap, hexcode, not_fe0f);
}

int ot_emoji_hex_strip_tones(char *out, size_t cap, const char *hexcode) {
  return hex_filter(out, cap, hexcode, not_skin_tone);
}

/* ---- emoji-datasource ---------------------------------------------------- */

struct ot_emoji_images {
  ot_emoji_image *v;
  size_t n, cap;
};

static int cmp_image(const void *a, const void *b) {
  return strcmp(((const ot_emoji_image *)a)->key, ((const ot_emoji_image *)b)->key);
}

/* Add one datasource record (a base entry or a skin variation). */
static int images_add(ot_emoji_images *im, json_t *rec, const char *path, const char *where,
                      const char *vendor, int *vendor_seen) {
  const char *unified = json_string_value(json_object_get(rec, "unified"));
  const char *image = json_string_value(json_object_get(rec, "image"));
  if (!unified || !image)
    return ot_fail(OT_EINVAL, "%s: %s: missing string field '%s'", path, where,
                   unified ? "image" : "unified");
  if (strchr(image, '/') || image[0] == '.')
    return ot_fail(OT_EINVAL, "%s: %s: unsafe image file name '%s'", path, where, image);
  char key[HEX_CAP];
  int st = ot_emoji_hex_normalise(key, sizeof key, unified);
  if (st) return ot_fail_ctx(st, "%s: %s", path, where);
  char flag[64];
  snprintf(flag, sizeof flag, "has_img_%s", vendor);
  json_t *f = json_object_get(rec, flag);
  if (f && !json_is_boolean(f))
    return ot_fail(OT_EINVAL, "%s: %s: '%s' is not a boolean", path, where, flag);
  if (f) *vendor_seen = 1;
  if (im->n == im->cap) {
    im->cap = im->cap ? 2 * im->cap : 1024;
    im->v = ot_xrealloc(im->v, im->cap * sizeof *im->v);
  }
  im->v[im->n++] = (ot_emoji_image){ot_xstrdup(key), ot_xstrdup(image), json_is_true(f)};
  return OT_OK;
}

int ot_emoji_images_open(ot_emoji_images **out, const char *emoji_json, const char *vendor) {
  *out = NULL;
  json_error_t jerr;
  json_t *root = json_load_file(emoji_json, 0, &jerr);
  if (!root) return ot_fail(OT_EINVAL, "%s:%d: %s", emoji_json, jerr.line, jerr.text);
  if (!json_is_array(root)) {
    json_decref(root);
    return ot_fail(OT_EINVAL, "%s: expected a JSON array of emoji records", emoji_json);
  }
  ot_emoji_images *im = ot_xcalloc(1, sizeof *im);
  int vendor_seen = 0, st = OT_OK;
  size_t i;
  json_t *e;
  json_array_foreach(root, i, e) {
    char where[96];
    snprintf(where, sizeof where, "record %zu", i);
    if (!json_is_object(e)) { st = ot_fail(OT_EINVAL, "%s: %s is not an object", emoji_json, where); break; }
    if ((st = images_add(im, e, emoji_json, where, vendor, &vendor_seen))) break;
    json_t *skins = json_object_get(e, "skin_variations");
    if (!skins || json_is_null(skins)) continue;
    if (!json_is_object(skins)) {
      st = ot_fail(OT_EINVAL, "%s: %s: 'skin_variations' is not an object", emoji_json, where);
      break;
    }
    const char *tone;
    json_t *sv;
    json_object_foreach(skins, tone, sv) {
      snprintf(where, sizeof where, "record %zu skin %.32s", i, tone);
      if (!json_is_object(sv)) { st = ot_fail(OT_EINVAL, "%s: %s is not an object", emoji_json, where); break; }
      if ((st = images_add(im, sv, emoji_json, where, vendor, &vendor_seen))) break;
    }
    if (st) break;
  }
  json_decref(root);
  if (st == OT_OK && !vendor_seen)
    st = ot_fail(OT_EINVAL, "%s: no record has 'has_img_%s': unknown vendor '%s'", emoji_json,
                 vendor, vendor);
  if (st == OT_OK) {
    qsort(im->v, im->n, sizeof *im->v, cmp_image);
    for (size_t k = 1; k < im->n; k++)
      if (strcmp(im->v[k - 1].key, im->v[k].key) == 0) {
        st = ot_fail(OT_EINVAL, "%s: '%s' and '%s' are the same code points %s once FE0F is dropped",
                     emoji_json, im->v[k - 1].image, im->v[k].image, im->v[k].key);
        break;
      }
  }
  if (st) { ot_emoji_images_close(im); return st; }
  *out = im;
  return OT_OK;
}

const ot_emoji_image *ot_emoji_images_find(const ot_emoji_images *im, const char *hexcode) {
  char key[HEX_CAP];
  if (ot_emoji_hex_normalise(key, sizeof key, hexcode)) return NULL;
  ot_emoji_image probe = {key, NULL, 0};
  return bsearch(&probe, im->v, im->n, sizeof *im->v, cmp_image);
}

void ot_emoji_images_close(ot_emoji_images *im) {
  if (!im) return;
  for (size_t i = 0; i < im->n; i++) {
    free(im->v[i].key);
    free(im->v[i].image);
  }
  free(im->v);
  free(im);
}

/* ---- emojibase-data ------------------------------------------------------ */

/* emojibase's group number of the "component" group (skin tones, hair). */
#define EMOJIBASE_GROUP_COMPONENT 2

static int check_tags(json_t *tags, const char *path, const char *hexcode) {
  size_t i;
  json_t *t;
  json_array_foreach(tags, i, t) {
    if (!json_is_string(t) || json_string_length(t) == 0)
      return ot_fail(OT_EINVAL, "%s: emoji %s: tag %zu is not a non-empty string", path, hexcode, i);
  }
  return OT_OK;
}

static void base_push(ot_emoji_base *b, size_t *cap, ot_emoji_entry e) {
  if (b->n == *cap) {
    *cap = *cap ? 2 * *cap : 1024;
    b->entries = ot_xrealloc(b->entries, *cap * sizeof *b->entries);
  }
  b->entries[b->n++] = e;
}

/* One emojibase base entry and its skins. */
static int base_add(ot_emoji_base *b, size_t *cap, json_t *e, size_t i, const char *path) {
  if (!json_is_object(e)) return ot_fail(OT_EINVAL, "%s: entry %zu is not an object", path, i);
  const char *hex = json_string_value(json_object_get(e, "hexcode"));
  const char *label = json_string_value(json_object_get(e, "label"));
  if (!hex) return ot_fail(OT_EINVAL, "%s: entry %zu: missing string field 'hexcode'", path, i);
  if (!label) return ot_fail(OT_EINVAL, "%s: entry %zu (%s): missing string field 'label'", path, i, hex);
  json_t *tags = json_object_get(e, "tags");
  json_t *skins = json_object_get(e, "skins");
  size_t n_skins = json_is_array(skins) ? json_array_size(skins) : 0;
  if (skins && !json_is_array(skins))
    return ot_fail(OT_EINVAL, "%s: entry %zu (%s): 'skins' is not an array", path, i, hex);
  if (tags && !json_is_array(tags))
    return ot_fail(OT_EINVAL, "%s: entry %zu (%s): 'tags' is not an array", path, i, hex);
  json_t *grp = json_object_get(e, "group");
  if (json_is_integer(grp) && json_integer_value(grp) == EMOJIBASE_GROUP_COMPONENT) {
    b->skipped_components += 1 + n_skins;
    return OT_OK;
  }
  if (!tags || json_array_size(tags) == 0) {
    b->skipped_no_tags += 1 + n_skins;
    return OT_OK;
  }
  int st = check_tags(tags, path, hex);
  if (st) return st;
  char group[HEX_CAP];
  if ((st = ot_emoji_hex_strip_tones(group, sizeof group, hex))) return ot_fail_ctx(st, "%s: entry %zu", path, i);
  if (!group[0]) {
    b->skipped_components += 1 + n_skins;
    return OT_OK;
  }
  base_push(b, cap, (ot_emoji_entry){hex, label, tags, ot_xstrdup(group)});
  size_t k;
  json_t *s;
  json_array_foreach(skins, k, s) {
    const char *shex = json_string_value(json_object_get(s, "hexcode"));
    if (!json_is_object(s) || !shex)
      return ot_fail(OT_EINVAL, "%s: entry %zu (%s): skin %zu has no 'hexcode'", path, i, hex, k);
    const char *slabel = json_string_value(json_object_get(s, "label"));
    /* Variants inherit the base's tags and group; the title is the
     * variant's own label when emojibase gives one. */
    base_push(b, cap, (ot_emoji_entry){shex, slabel && slabel[0] ? slabel : label, tags,
                                       ot_xstrdup(group)});
  }
  return OT_OK;
}

int ot_emoji_base_load(ot_emoji_base *out, const char *data_json) {
  memset(out, 0, sizeof *out);
  json_error_t jerr;
  json_t *root = json_load_file(data_json, 0, &jerr);
  if (!root) return ot_fail(OT_EINVAL, "%s:%d: %s", data_json, jerr.line, jerr.text);
  if (!json_is_array(root)) {
    json_decref(root);
    return ot_fail(OT_EINVAL, "%s: expected a JSON array of emoji entries", data_json);
  }
  out->root = root;
  size_t cap = 0, i;
  json_t *e;
  json_array_foreach(root, i, e) {
    int st = base_add(out, &cap, e, i, data_json);
    if (st) { ot_emoji_base_free(out); return st; }
  }
  return OT_OK;
}

void ot_emoji_base_free(ot_emoji_base *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n; i++) free(b->entries[i].group);
  free(b->entries);
  json_decref(b->root);
  memset(b, 0, sizeof *b);
}
