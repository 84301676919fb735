/* Precomputed per-frame features (e.g. CLIP vectors computed elsewhere) for
 * ot-extract to store with each item (extract.features), from one HDF5 file:
 *
 *   /id        vlen UTF-8 [N]   item ids, as in the manifests (each once)
 *   /features  float [N,T,D]    row r: the T frames' features of item id[r]
 *
 * Only the ids are held in memory; an item's row is read when asked for, so
 * the file may be far larger than memory. */
#ifndef OT_FEATURES_IN_H
#define OT_FEATURES_IN_H

typedef struct ot_features_in ot_features_in;

/* Open `path`, expecting T frames per row. OT_EINVAL naming the file and the
 * dataset when one is missing, of another type or rank, when its T differs,
 * when D is 0 or when an id repeats; OT_EIO when a read fails. Caller owns
 * *out (ot_features_in_close). */
int ot_features_in_open(ot_features_in **out, const char *path, int T);
void ot_features_in_close(ot_features_in *f); /* accepts NULL */
int ot_features_in_dim(const ot_features_in *f); /* D */
/* Item `id`'s features into out [T,D]. OT_EINVAL when the file has no row
 * for it or the row holds a non-finite value (a bad item: the caller records
 * it and goes on); OT_EIO when the read fails. */
int ot_features_in_read(ot_features_in *f, const char *id, float *out);

#endif
