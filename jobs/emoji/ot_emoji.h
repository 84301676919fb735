/* The emoji benchmark builder (ot-emoji-data): reads the npm packages
 * emoji-datasource-<vendor> (which image file shows which code point
 * sequence) and emojibase-data (label and tags per emoji and language),
 * and writes JSON Lines manifests split by base emoji, a clip plan for the
 * video variant, and a summary.
 *
 * Sources:   emoji_sources.c  (datasource images, emojibase entries)
 * Items:     emoji_items.c    (split rule, items per vendor, clip picks)
 * Output:    emoji_output.c   (manifests, clip plan, summary, atomic files)
 * Program:   ot_emoji_data.c  (command line) */
#ifndef OT_EMOJI_H
#define OT_EMOJI_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define OT_EMOJI_MAX_VENDORS 8

enum { OT_EMOJI_TRAIN = 0, OT_EMOJI_VAL = 1, OT_EMOJI_TEST = 2, OT_EMOJI_NSPLITS = 3 };
extern const char *const ot_emoji_split_names[OT_EMOJI_NSPLITS];

/* ---- split rule --------------------------------------------------------- */

/* Split of a base emoji: h = FNV-1a 32 of the group's bytes (ot_fnv1a32); h%100 < 80 train, < 85 val,
 * else test. `group` is the base hexcode, uppercase, skin tones removed. */
int ot_emoji_split_of(const char *group);

/* Normalised hexcode used to match emojibase to emoji-datasource: uppercase,
 * FE0F (variation selector 16) dropped, because the two sources disagree on
 * where the qualifier is written. Writes at most cap bytes into out;
 * returns OT_EINVAL when the result does not fit. */
int ot_emoji_hex_normalise(char *out, size_t cap, const char *hexcode);
/* Base hexcode with skin-tone modifiers (1F3FB..1F3FF) removed, uppercase.
 * Same capacity rule. May produce "" (a lone skin-tone swatch). */
int ot_emoji_hex_strip_tones(char *out, size_t cap, const char *hexcode);

/* ---- emoji-datasource: which images exist -------------------------------- */

typedef struct {
  char *key;   /* normalised hexcode */
  char *image; /* file name in img/<vendor>/64/, e.g. "1f44b-1f3fb.png" */
  int has_img; /* the datasource lists an image of this vendor */
} ot_emoji_image;

typedef struct ot_emoji_images ot_emoji_images;

/* Read emoji.json of the emoji-datasource-<vendor> package and index every
 * code point sequence including skin variations, with its
 * "has_img_<vendor>" flag. A vendor that no record mentions is OT_EINVAL.
 * *out is owned by the caller and freed with ot_emoji_images_close. */
int ot_emoji_images_open(ot_emoji_images **out, const char *emoji_json, const char *vendor);
/* The image of a hexcode (any qualification), or NULL. Borrowed. */
const ot_emoji_image *ot_emoji_images_find(const ot_emoji_images *im, const char *hexcode);
void ot_emoji_images_close(ot_emoji_images *im);

/* ---- emojibase-data: labels and tags ------------------------------------- */

typedef struct {
  const char *hexcode; /* as emojibase writes it (borrowed from the JSON) */
  const char *label;   /* the entry's own label (variants have their own) */
  json_t *tags;        /* the BASE emoji's tag array (borrowed) */
  char *group;         /* base hexcode without skin tones (owned) */
} ot_emoji_entry;

typedef struct {
  json_t *root;           /* the parsed data.json; entries borrow from it */
  ot_emoji_entry *entries; /* bases and skin variants, in file order */
  size_t n;
  size_t skipped_no_tags;    /* emojibase entries (with their skins) without tags */
  size_t skipped_components; /* skin-tone swatches and hair components */
} ot_emoji_base;

/* Read emojibase-data <lang>/data.json. Entries without tags (regional
 * indicator letters) and components (emojibase group 2: skin-tone swatches,
 * hair styles) are counted and left out. Errors name the file and entry.
 * On OT_OK the caller frees with ot_emoji_base_free. */
int ot_emoji_base_load(ot_emoji_base *out, const char *data_json);
void ot_emoji_base_free(ot_emoji_base *b);

/* ---- items ---------------------------------------------------------------- */

typedef struct {
  char *id;          /* "<hexcode>-<vendor>" (owned) */
  char *path;        /* image path as written into the manifest (owned) */
  const char *title; /* borrowed from ot_emoji_base */
  json_t *tags;      /* borrowed */
  const char *group; /* borrowed */
  int split;
} ot_emoji_item;

typedef struct {
  ot_emoji_item *items; /* sorted by id */
  size_t n;
  size_t missing[OT_EMOJI_MAX_VENDORS]; /* emojibase entries without image */
  json_t *missing_hex; /* {vendor: [hexcodes without image]} (owned) */
} ot_emoji_items;

/* One item per (entry, vendor) image that exists; images[v] is the index
 * of vendors[v]'s package. `npm_dir` is the node_modules folder;
 * `path_prefix` is what the manifest writes in front of
 * "emoji-datasource-<vendor>/img/<vendor>/64/<file>" (ends with '/' or is
 * ""). An image counts as present when the datasource lists it and the file
 * is a PNG. Duplicate ids are OT_EINVAL. On OT_OK the caller frees *out with
 * ot_emoji_items_free (items borrow from `base`, which must outlive them). */
int ot_emoji_items_build(ot_emoji_items *out, const ot_emoji_base *base,
                         ot_emoji_images *const *images, const char *npm_dir,
                         const char *path_prefix, const char *const *vendors, int n_vendors);
void ot_emoji_items_free(ot_emoji_items *it);
/* The item with this id, or NULL (binary search). */
const ot_emoji_item *ot_emoji_items_find(const ot_emoji_items *it, const char *id);

/* ---- video clips ------------------------------------------------------------ */

typedef struct {
  const ot_emoji_item *item; /* borrowed: the image the clip is rendered from */
  int width, height;         /* 128x128 or 160x120 */
  int fps;                   /* 15, 20, 24, 25 or 30 */
  int seconds;               /* 2, 3 or 4 */
  int motion;                /* 0 zoom in, 1 zoom out, 2 pan right, 3 pan diagonal */
  uint32_t background;       /* 0xRRGGBB behind the transparent emoji */
} ot_emoji_clip;

/* Pick n_clips items, evenly spaced over the id order (so every split is
 * represented in proportion), and derive each clip's parameters from the
 * hash of its id. Returns an ot_xmalloc'd array of min(n_clips, items->n)
 * clips in *out (caller frees; clips borrow items). */
size_t ot_emoji_clips_pick(ot_emoji_clip **out, const ot_emoji_items *items, size_t n_clips);

/* ---- output ----------------------------------------------------------------- */

/* Write <dir>/<bench>.{train,val,test}.jsonl. If clips is not NULL, the
 * items are the clips' items (looked up in `items` by id, so the zh
 * benchmark gets its own titles and tags) with path "clips/<id>.mp4". */
int ot_emoji_write_manifests(const char *dir, const char *bench, const ot_emoji_items *items,
                             const ot_emoji_clip *clips, size_t n_clips);
/* Write <dir>/clips/plan.tsv: one clip a line, tab-separated:
 * clip path, image path (both relative to dir), width, height, fps, frames,
 * motion, background as RRGGBB. Creates <dir>/clips. */
int ot_emoji_write_clip_plan(const char *dir, const ot_emoji_clip *clips, size_t n_clips);
/* Statistics of one benchmark (see summary.json); a new object owned by
 * the caller. clips as for ot_emoji_write_manifests. */
json_t *ot_emoji_bench_stats(const ot_emoji_items *items, const ot_emoji_clip *clips,
                             size_t n_clips, const char *const *vendors, int n_vendors,
                             int with_missing);

#endif
