/* What the BPE trainer (bpe_train.c) needs of the tokenizer (bpe.c); not
 * part of the API. */
#ifndef OT_BPE_IMPL_H
#define OT_BPE_IMPL_H

#include "bpe.h"

#include <stddef.h>
#include <stdint.h>

static inline uint64_t ot_bpe_mix64(uint64_t x) {
  x ^= x >> 30; x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27; x *= 0x94D049BB133111EBULL;
  return x ^ (x >> 31);
}

/* The key of the adjacent token pair (l, r). */
static inline uint64_t ot_bpe_pair_key(int32_t l, int32_t r) {
  return ((uint64_t)(uint32_t)l << 32) | (uint32_t)r;
}

/* A tokenizer with the special and byte tokens and no merge. Caller owns
 * it (ot_bpe_close); aborts when out of memory. */
ot_bpe *ot_bpe_new_bytes(void);
/* Append the merge (l, r); returns the new token's id. */
int32_t ot_bpe_add_merge(ot_bpe *b, int32_t l, int32_t r);
/* Whether tokens l, r (ids >= OT_BPE_BYTE0) may merge: whole characters
 * with whole characters, or pieces that stay within one character. */
int ot_bpe_merge_allowed(const ot_bpe *b, int32_t l, int32_t r);
/* End of the pre-token run that starts at s[i] (i < n). */
size_t ot_bpe_next_run(const uint8_t *s, size_t n, size_t i);

#endif
