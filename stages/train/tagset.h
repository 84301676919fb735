/* The closed-set tag vocabulary of the Bin/ASL heads: every tag seen on at
 * least model.min_tag_count training items, sorted by byte order (strcmp)
 * so the head's column k means the same tag on every rank and in every run.
 * Tags are taken after ot_tagnorm, the one definition of "the same tag"
 * that ot-eval scores with: "Cat", "cat " and "ＣＡＴ" are one column.
 * Saved as JSON in train.dir and inside checkpoints (files written before
 * 2026-11-27 hold the raw spellings; they read as they are). */
#ifndef OT_TAGSET_H
#define OT_TAGSET_H

#include "ot_dataset.h"

#include <stdint.h>

typedef struct {
  int n;            /* tags in the vocabulary */
  char **tags;      /* [n] sorted by strcmp, owned */
  int64_t *counts;  /* [n] training items holding the tag */
} ot_tagset;

/* Count the items of `train` holding each normalised tag and keep those on
 * >= min_count items. OT_EINVAL if none qualifies. *out owns its arrays
 * (ot_tagset_free). */
int ot_tagset_build(ot_tagset *out, const ot_dataset *train, int min_count);
/* Column of `tag` (normalised with ot_tagnorm first), or -1 when it is not
 * in the vocabulary (binary search). */
int ot_tagset_index(const ot_tagset *t, const char *tag);
/* {"format": "open-tag-tags", "tags": [...], "counts": [...]}; the caller
 * owns the reference (json_decref). */
struct json_t;
struct json_t *ot_tagset_json(const ot_tagset *t);
/* The same as text (JSON_INDENT(1)); malloc'd, the caller frees it. */
char *ot_tagset_to_json(const ot_tagset *t);
/* Parse what ot_tagset_to_json wrote; `what` names the source in errors.
 * *out owns its arrays (ot_tagset_free). */
int ot_tagset_from_json(ot_tagset *out, const char *json, const char *what);
/* Take ownership of n strdup'd/malloc'd tags and counts (already sorted and
 * unique: OT_EINVAL otherwise) — for readers of other formats (HDF5). */
int ot_tagset_adopt(ot_tagset *out, int n, char **tags, int64_t *counts, const char *what);
void ot_tagset_free(ot_tagset *t); /* accepts a zeroed struct */

#endif
