/* Tag text normalisation: the one definition of "the same tag", used
 * wherever tags are compared, counted or merged (vocabularies, retrieval
 * fusion, evaluation).
 *
 *   NFKC + Unicode case folding (libutf8proc), then white space trimmed at
 *   both ends and every run of it collapsed to one ASCII space.
 *
 * So "ＡＢＣ" == "abc", "ﬁsh" == "fish", "Straße" == "strasse", "ΣΟΦΙΑ" ==
 * "σοφια", " new\u3000york " == "new york"; Chinese text is unchanged.
 * White space is what Unicode calls so: categories Zs/Zl/Zp plus the control
 * characters TAB, LF, VT, FF, CR and NEL. Default-ignorable code points are
 * kept on purpose (ZWJ and variation selectors are part of emoji). */
#ifndef OT_TAGNORM_H
#define OT_TAGNORM_H

#include <stddef.h>

/* Normalise the NUL-terminated UTF-8 `in` into `out` (cap bytes, NUL
 * included). *len (may be NULL) gets the byte length of the result without
 * the NUL — also when it does not fit, so a caller can retry with a larger
 * buffer. OT_EINVAL for invalid UTF-8 ("invalid UTF-8 at byte N of '...'")
 * or when the result does not fit in cap. A tag of only white space
 * normalises to "" (callers decide whether that is an error). */
int ot_tagnorm(const char *in, char *out, size_t cap, size_t *len);
/* Same, into a malloc'd string the caller frees (*out is NULL on error). */
int ot_tagnorm_dup(const char *in, char **out);
/* One item's distinct tags: tags[0..n) normalised, in their order, those
 * that normalise to "" or are not UTF-8 dropped, each form once. Up to n
 * malloc'd strings into norm[] (the caller frees them); first[j] (NULL: not
 * wanted) is the index in tags[] of norm[j]'s first spelling. Returns how
 * many. */
int ot_tagnorm_unique(const char *const *tags, int n, char **norm, int *first);

#endif
