/* The title lexicon (model.lexicon, rag): a metadata source of tag
 * candidates beside the retrieval systems — the pieces of an item's own
 * title, each scored by how often that piece of a training title was also
 * one of its item's tags.
 *
 * Pieces: the title after ot_tagnorm, cut into words at white space and at
 * punctuation (Unicode P* but dashes and apostrophes, which occur inside
 * tags: "t-shirt", "worker’s"); a word of CJK ideographs or kana is one
 * unit per character, since those scripts write no spaces. A piece is 1 to
 * max_units consecutive units that no punctuation separates, joined as
 * written ("thumbs up", "按键"). So "Flag: United States" has the pieces
 * flag, united, states, united states.
 *
 * Counts are over groups (the manifest's `group`, else the id: the skin
 * tones and vendors of one emoji are one group), so that an item repeated
 * in many renditions does not count many times. A piece seen in the titles
 * of n groups, k of which had it as a tag, scores
 *   (k + ALPHA * prior) / (n + ALPHA)
 * where the prior is the share of the pieces seen in exactly one group
 * that were a tag there — the chance that a piece of a title unseen
 * elsewhere is a tag, measured as if its one group were held out — among
 * the pieces of the same shape: u units, in the title's first segment (the
 * units before the first separating punctuation) or a later one, the whole
 * segment, its start, its end or its middle, and whether it is a word.
 * Where a piece stands says much: in emoji-en a new word inside a first
 * segment of several words ("woman juggling") is a tag 92-99 % of the
 * time, a new one-word title ("octopus") 6 %, a new word after "flag:" 4 %.
 * Whether it is a word matters where no spaces say so: a piece of CJK
 * characters is a word when it is one word of ICU's dictionary-based word
 * breaking (城市|黄昏, 女|超级|大|坏蛋), and a new two-character start or
 * end of a first segment is a tag in emoji-zh 45-56 % of the time when it
 * is a word, 12-14 % when it is not (创可贴 breaks 创|可|贴: neither 创可 nor
 * 可贴 is a word). A piece counts as a word when ICU breaks at its two ends
 * and inside it only at spaces, so every piece of space-separated words is
 * one and "b型" of "b型血" (b|型|血) is not. Each shape's share is shrunk
 * toward its length's (prior[u-1]) by BETA pseudo-pieces. A piece never
 * seen scores the prior: that is how a tag never seen in training can come
 * from the title.
 *
 * The same counts say something when a piece is missing. A tag that is also
 * a title piece — "man", "woman" — is mostly given to items whose title
 * says it, so an item whose title does not say it is less likely to have
 * it than the tag's base rate: with g groups in all, t of them tagged with
 * the piece, n with it in the title, k of those tagged,
 *   absence ratio = P(tag | not in title) / P(tag)
 *                 = ((t - k + ALPHA * t/g) / (g - n + ALPHA)) / (t/g),
 * capped at 1 (ot_lexicon_absence). rag multiplies the answer's score of a
 * tag its title lacks by the ratio raised to a weight tuned on val
 * (ot_gen_fuse_title); a tag that is no title piece keeps its score. */
#ifndef OT_LEXICON_H
#define OT_LEXICON_H

#include "ot_dataset.h"
#include "ot_model.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
  int max_units;   /* longest piece (0: no lexicon) */
  int n;           /* distinct pieces of the training titles */
  char **text;     /* [n] sorted by strcmp, owned */
  int64_t *groups; /* [n] training groups with the piece in a title */
  int64_t *tagged; /* [n] of those, the groups that had it as a tag */
  /* [n] groups that had the piece as a tag, its title saying it or not;
   * NULL in checkpoints written before the absence ratio (ratio 1) */
  int64_t *tag_groups;
  int64_t n_groups; /* training groups */
  float *prior;     /* [max_units] see above; prior[u-1] for u units */
  /* [max_units * OT_LEXICON_SHAPES] the prior of pieces of u units and
   * shape s at [(u-1) * OT_LEXICON_SHAPES + s]; NULL in checkpoints written
   * before the shapes (then prior[u-1] for every shape); checkpoints
   * written before the word bit (OT_LEXICON_PLACES shapes) read with one
   * prior for both values of it */
  float *prior_shape;
  /* [n_once] the pieces seen in one group's titles and never a tag, which
   * score (0 + ALPHA * prior) / (1 + ALPHA): by their ot_lexicon_hash,
   * ascending, without text (most pieces of a large corpus; see
   * lexicon_build.c). 0 / NULL in checkpoints written before, whose text
   * holds every piece. */
  int64_t n_once;
  uint64_t *once;
} ot_lexicon;

/* A piece's shape: word or not x segment (first, later) x place in it. */
enum { OT_LEXICON_WHOLE, OT_LEXICON_START, OT_LEXICON_END, OT_LEXICON_MIDDLE };
#define OT_LEXICON_LATER 4   /* shape bit: in a later segment */
#define OT_LEXICON_PLACES 8  /* segment x place */
#define OT_LEXICON_WORD 8    /* shape bit: a word (above) */
#define OT_LEXICON_SHAPES 16 /* shape = WORD * word + LATER * (segment > 0) + place */

/* The pieces of one title, each once, in order of first appearance. */
typedef struct {
  int n;
  char **text;  /* [n] owned */
  int *units;   /* [n] */
  int *shape;   /* [n] where it first stands in the title (OT_LEXICON_SHAPES) */
  float *score; /* [n] filled by ot_lexicon_lookup */
} ot_lexicon_hits;

/* Collective: count the pieces of up to max_units units (1..255) of every
 * title of `train`, each rank reading its share of the titles; every rank
 * gets the whole lexicon, the one a single process builds (lexicon_build.c:
 * memory grows with the distinct pieces, not with the titles). OT_EINVAL
 * naming the item when a title or tag is not UTF-8 (ot_lexicon_pieces'
 * status, naming the item, when ICU fails), on every rank. *out owns its
 * arrays (ot_lexicon_free). */
int ot_lexicon_build(ot_lexicon *out, const ot_dataset *train, int max_units);
/* The same with chunks of at least chunk_min sightings (ot_lexicon_build:
 * 2^20); the counts do not depend on it (tests use small chunks). shared 0:
 * this process reads every title alone, with no MPI call (a lone process
 * of ot_mpi makes none either way). */
int ot_lexicon_build_chunks(ot_lexicon *out, const ot_dataset *train, int max_units, size_t chunk_min,
                            int shared);
/* The 64-bit FNV-1a hash of a piece's text (ot_lexicon.once). */
uint64_t ot_lexicon_hash(const char *piece);
/* Ascending order of two uint64_t hashes (qsort / bsearch). */
int ot_lexicon_cmp_hash(const void *a, const void *b);
/* The pieces of `title` (up to max_units units). OT_EINVAL when it is not
 * UTF-8; OT_EIO (OT_ENOMEM) when ICU cannot break it into words (its data
 * missing). *out owns its arrays (ot_lexicon_hits_free). */
int ot_lexicon_pieces(const char *title, int max_units, ot_lexicon_hits *out);
/* The pieces of `title`, scored (see above), best first (ties: by text). */
int ot_lexicon_lookup(const ot_lexicon *lx, const char *title, ot_lexicon_hits *out);
/* Score of one piece of `units` units and shape `shape`. */
float ot_lexicon_score(const ot_lexicon *lx, const char *piece, int units, int shape);
/* The absence ratio (above) of each of the answer's tags (normalised) for
 * an item whose title's pieces are `title` (ot_lexicon_lookup's): 1 for a
 * tag among them, for a tag no training title holds, and without
 * tag_groups; else in (0, 1]. ratio[i] is tags->tags[i]'s. */
void ot_lexicon_absence(const ot_lexicon *lx, const ot_lexicon_hits *title,
                        const ot_gen_item *tags, float *ratio);
/* Take ownership of arrays read from a file (sorted, unique, counts
 * consistent, priors in [0, 1], hashes ascending: OT_EINVAL naming `what`
 * otherwise). tag_groups, prior_shape and once may be NULL (older files;
 * n_groups is then ignored; n_once 0). */
int ot_lexicon_adopt(ot_lexicon *out, int max_units, int n, char **text, int64_t *groups,
                     int64_t *tagged, int64_t *tag_groups, int64_t n_groups, float *prior,
                     float *prior_shape, int64_t n_once, uint64_t *once, const char *what);
void ot_lexicon_free(ot_lexicon *lx);        /* accepts a zeroed struct */
void ot_lexicon_hits_free(ot_lexicon_hits *h); /* accepts a zeroed struct */

#endif
