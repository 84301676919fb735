/* Byte-level BPE tokenizer for titles and tags.
 *
 * Ids: 0..4 are special tokens (below), 5..260 are the 256 bytes
 * (id = OT_BPE_BYTE0 + byte), 261.. are merges in the order they were
 * learned. Every byte string is encodable (no unknown token).
 *
 * Pre-tokenization (shared by training and encoding, so merges never cross
 * it): text is cut into runs of one character class — letters (any script;
 * CJK runs have no spaces and stay one run), ASCII/fullwidth digits,
 * punctuation (ASCII, general and CJK punctuation), symbols/emoji —
 * and runs of whitespace. A single U+0020 before a run is kept as the first
 * byte of that run (GPT-2's "Ġ" convention), so " cat" and "cat" are
 * different tokens and the space costs nothing extra. Combining marks,
 * ZWJ/ZWNJ, variation selectors, skin-tone modifiers and emoji tag
 * characters never start a run: they stay with the preceding character, so
 * an emoji ZWJ sequence or "1️⃣" is one run. Runs are capped at
 * OT_BPE_MAX_RUN bytes (cut at a character boundary).
 *
 * Merges are restricted so that every token is either a sequence of whole
 * UTF-8 characters or a piece of a single character: a token never holds
 * the end of one character and the start of the next. Bytes of one
 * character merge first because they are the most frequent pairs.
 *
 * Training is deterministic: pairs are ranked by frequency, ties broken by
 * (left id, right id) ascending; the result does not depend on the order of
 * the input texts. Training stops early when no pair occurs twice, so the
 * learned vocabulary can be smaller than asked: use ot_bpe_vocab_size.
 *
 * Encode/decode only read the tokenizer: concurrent calls on one handle
 * from several threads are safe. */
#ifndef OT_BPE_H
#define OT_BPE_H

#include <stddef.h>
#include <stdint.h>

enum {
  OT_BPE_PAD = 0,   /* padding; never produced by encode */
  OT_BPE_BOS = 1,   /* start of a tag / sequence */
  OT_BPE_EOS = 2,   /* end of a tag / sequence */
  OT_BPE_SEP = 3,   /* separator between tags in one sequence */
  OT_BPE_NONE = 4,  /* "no tag" target for prompts matched to nothing */
  OT_BPE_N_SPECIAL = 5,
  OT_BPE_BYTE0 = OT_BPE_N_SPECIAL,        /* id of byte 0x00 */
  OT_BPE_MIN_VOCAB = OT_BPE_N_SPECIAL + 256,
  OT_BPE_MAX_VOCAB = 1 << 22,
  OT_BPE_MAX_RUN = 256,                   /* bytes per pre-token run */
};

typedef struct ot_bpe ot_bpe;

/* Learn merges from n UTF-8 strings until the vocabulary (specials + 256
 * bytes + merges) reaches vocab_size, or no pair occurs at least twice.
 * OT_EINVAL if vocab_size is outside [OT_BPE_MIN_VOCAB, OT_BPE_MAX_VOCAB].
 * Single-threaded; its tables scale with the distinct pre-tokens (3 million
 * synthetic titles, 118 MB: ~10 s and 230 MB at vocab 8192) and running out
 * of memory aborts. *out is a new handle owned by the caller (ot_bpe_close). */
int ot_bpe_train(ot_bpe **out, const char *const *texts, size_t n, int vocab_size);

/* Encode a NUL-terminated string (any bytes; UTF-8 expected) into ids,
 * without BOS/EOS. *n_ids is always set to the number of ids the text
 * needs; OT_EINVAL (nothing promised about ids[]) if that exceeds max_ids.
 * No allocation. */
int ot_bpe_encode(const ot_bpe *bpe, const char *text, int32_t *ids, int max_ids, int *n_ids);

/* Decode ids into buf as NUL-terminated UTF-8. Special tokens contribute no
 * bytes. Byte sequences that are not valid UTF-8 (e.g. a generated token
 * sequence that stops mid-character) are replaced by U+FFFD, one per
 * maximal invalid subpart, so the output is always valid UTF-8; ids that
 * came from encoding valid UTF-8 decode to exactly the original text.
 * *len is always set to the decoded length without the NUL; OT_EINVAL if
 * *len + 1 > cap or an id is outside the vocabulary. No allocation. */
int ot_bpe_decode(const ot_bpe *bpe, const int32_t *ids, int n, char *buf, size_t cap,
                  size_t *len);

/* Decoding that never writes broken text: the state of a token sequence's
 * bytes as it grows (pending: bytes of a character begun but not finished;
 * lead: its first byte). A token may follow when its bytes keep the text
 * valid UTF-8; a special token only at a character boundary (it ends or
 * separates tags). Start from a zeroed state. */
typedef struct {
  uint8_t lead, have, need; /* need: bytes of the character still to come */
} ot_bpe_utf8;

/* 1 if token id may follow state *s, and then *s becomes the state after
 * it; 0 (and *s unchanged) if not, or if id is outside the vocabulary. */
int ot_bpe_utf8_next(const ot_bpe *bpe, ot_bpe_utf8 *s, int32_t id);

/* Number of token ids (specials + bytes + merges). */
int ot_bpe_vocab_size(const ot_bpe *bpe);

/* The bytes a token stands for: *bytes points into the tokenizer (valid
 * until ot_bpe_close, not NUL-terminated), *len is 0 for special tokens.
 * OT_EINVAL if id is outside the vocabulary. */
int ot_bpe_token_bytes(const ot_bpe *bpe, int32_t id, const char **bytes, size_t *len);

/* "<pad>", "<bos>", "<eos>", "<sep>", "<none>" for special ids, else NULL. */
const char *ot_bpe_special_name(int32_t id);

/* Serialise to a text string (ASCII, one merge per line), e.g. for an HDF5
 * attribute. *out is malloc'd; the caller frees it. */
int ot_bpe_save_string(const ot_bpe *bpe, char **out);

/* Parse a string written by ot_bpe_save_string. On bad input returns
 * OT_EINVAL with a message naming the line. *out is a new handle owned by
 * the caller (ot_bpe_close). */
int ot_bpe_load_string(ot_bpe **out, const char *text);

/* Write the serialised form to path atomically (temp file, fsync, rename). */
int ot_bpe_save(const ot_bpe *bpe, const char *path);

/* Read a file written by ot_bpe_save; errors name "path:line". *out is a
 * new handle owned by the caller (ot_bpe_close). */
int ot_bpe_load(ot_bpe **out, const char *path);

/* Free a handle; NULL is accepted. */
void ot_bpe_close(ot_bpe *bpe);

#endif
