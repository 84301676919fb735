/* Byte-level BPE: pre-tokenizer, merge table, encode/decode, constrained
 * decoding and the text serialisation (training: bpe_train.c). Conventions
 * are described in bpe.h. */
#include "bpe.h"
#include "bpe_impl.h"

#include "ot_common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EMPTY_KEY UINT64_MAX
#define NO_RANK INT32_MAX

struct ot_bpe {
  int32_t n_merges, cap_merges;
  int32_t *merges;      /* [2*cap_merges]: left, right id of merge r (token id MERGE0 + r) */
  size_t *tok_off;      /* [cap_merges + MIN_VOCAB + 1]: token t's bytes are
                           tok_bytes[tok_off[t] .. tok_off[t+1]) */
  uint8_t *tok_bytes;
  size_t bytes_len, bytes_cap;
  uint8_t *complete;    /* [vocab]: token is a sequence of whole UTF-8 characters */
  uint64_t *hkey;       /* open-addressing table (left, right) -> merge rank */
  int32_t *hrank;
  uint64_t hmask;
};

static const char *const special_names[OT_BPE_N_SPECIAL] = {"<pad>", "<bos>", "<eos>", "<sep>",
                                                            "<none>"};

/* ------------------------------------------------------------------ UTF-8 */

/* Length of the sequence a lead byte starts, 0 if it cannot start one. */
static int utf8_seq_len(uint8_t b) {
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return 2;
  if (b >= 0xE0 && b <= 0xEF) return 3;
  if (b >= 0xF0 && b <= 0xF4) return 4;
  return 0;
}

/* Whether b may follow at position pos (>= 1) of a sequence led by `lead`;
 * the second byte's range excludes overlongs, surrogates and > U+10FFFF. */
static int utf8_cont_ok(uint8_t lead, int pos, uint8_t b) {
  if (pos == 1) {
    if (lead == 0xE0) return b >= 0xA0 && b <= 0xBF;
    if (lead == 0xED) return b >= 0x80 && b <= 0x9F;
    if (lead == 0xF0) return b >= 0x90 && b <= 0xBF;
    if (lead == 0xF4) return b >= 0x80 && b <= 0x8F;
  }
  return b >= 0x80 && b <= 0xBF;
}

/* Length of the valid character at s[0..n), 0 if it is not valid. */
static int utf8_char_len(const uint8_t *s, size_t n) {
  int len = utf8_seq_len(s[0]);
  if (len == 0 || (size_t)len > n) return 0;
  for (int k = 1; k < len; k++)
    if (!utf8_cont_ok(s[0], k, s[k])) return 0;
  return len;
}

static int utf8_valid(const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n;) {
    int len = utf8_char_len(s + i, n - i);
    if (len == 0) return 0;
    i += (size_t)len;
  }
  return 1;
}

/* Whether s[0..n) lies inside the encoding of one character (a lead byte
 * with some of its continuation bytes, or continuation bytes only). */
static int utf8_piece(const uint8_t *s, size_t n) {
  if (n == 0 || n > 4) return 0;
  int len = utf8_seq_len(s[0]);
  if (len == 1) return n == 1;
  if (len > 1) {
    if (n > (size_t)len) return 0;
    for (size_t k = 1; k < n; k++)
      if (!utf8_cont_ok(s[0], (int)k, s[k])) return 0;
    return 1;
  }
  if (s[0] < 0x80 || s[0] > 0xBF || n > 3) return 0;
  for (size_t k = 1; k < n; k++)
    if (s[k] < 0x80 || s[k] > 0xBF) return 0;
  return 1;
}

/* Decode the character at s[i]; invalid bytes are one "character" of -1. */
static size_t next_char(const uint8_t *s, size_t n, size_t i, int32_t *cp) {
  int len = utf8_char_len(s + i, n - i);
  if (len == 0) { *cp = -1; return 1; }
  static const uint8_t lead_mask[5] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  int32_t c = s[i] & lead_mask[len];
  for (int k = 1; k < len; k++) c = (c << 6) | (s[i + k] & 0x3F);
  *cp = c;
  return (size_t)len;
}

/* ------------------------------------------------------- pre-tokenization */

enum { CL_LETTER, CL_DIGIT, CL_PUNCT, CL_SYMBOL, CL_SPACE, CL_EXTEND };

#define IN(lo, hi) (c >= (lo) && c <= (hi))

/* Coarse Unicode classes: enough to keep words, numbers, punctuation and
 * emoji apart without Unicode tables. Unlisted code points are letters. */
static int char_class(int32_t c) {
  if (c < 0) return CL_LETTER;
  if (c < 0x80) {
    if (c == ' ' || IN(9, 13)) return CL_SPACE;
    if (IN('0', '9')) return CL_DIGIT;
    if (IN('a', 'z') || IN('A', 'Z')) return CL_LETTER;
    return CL_PUNCT;
  }
  /* Marks, joiners, variation selectors, skin tones, tag characters. */
  if (IN(0x300, 0x36F) || IN(0x1AB0, 0x1AFF) || IN(0x1DC0, 0x1DFF) || IN(0x200B, 0x200F) ||
      IN(0x2060, 0x206F) || IN(0x20D0, 0x20FF) || IN(0xFE00, 0xFE0F) || IN(0xFE20, 0xFE2F) ||
      c == 0xFEFF || IN(0x1F3FB, 0x1F3FF) || IN(0xE0020, 0xE007F) || IN(0xE0100, 0xE01EF))
    return CL_EXTEND;
  if (c == 0x85 || c == 0xA0 || c == 0x1680 || IN(0x2000, 0x200A) || c == 0x2028 ||
      c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000)
    return CL_SPACE;
  if (IN(0xFF10, 0xFF19)) return CL_DIGIT;
  if (c == 0xA9 || c == 0xAE || IN(0x2100, 0x2BFF) || c == 0x3297 || c == 0x3299 ||
      IN(0x1F000, 0x1FAFF))
    return CL_SYMBOL;
  if ((IN(0xA1, 0xBF) && c != 0xAA && c != 0xB5 && c != 0xBA) || c == 0xD7 || c == 0xF7 ||
      IN(0x2010, 0x205E) || IN(0x2E00, 0x2E7F) || IN(0x3001, 0x3004) || IN(0x3008, 0x3020) ||
      c == 0x3030 || IN(0x303D, 0x303F) || c == 0x30FB || IN(0xFE10, 0xFE19) ||
      IN(0xFE30, 0xFE6F) || IN(0xFF01, 0xFF0F) || IN(0xFF1A, 0xFF20) || IN(0xFF3B, 0xFF40) ||
      IN(0xFF5B, 0xFF65))
    return CL_PUNCT;
  return CL_LETTER;
}

#undef IN

/* End of the pre-token run that starts at s[i] (i < n). */
size_t ot_bpe_next_run(const uint8_t *s, size_t n, size_t i) {
  int32_t cp;
  size_t start = i, len = next_char(s, n, i, &cp);
  int cls = char_class(cp);
  if (cls == CL_SPACE) {
    size_t j = i + len;
    while (j < n) {
      size_t l = next_char(s, n, j, &cp);
      int c = char_class(cp);
      if ((c != CL_SPACE && c != CL_EXTEND) || j + l - start > OT_BPE_MAX_RUN) break;
      j += l;
    }
    if (j == n || s[j - 1] != ' ' || char_class(cp) == CL_SPACE) return j;
    if (j - 1 > start) return j - 1;  /* the last space goes with the next run */
    i = j;                            /* a lone space: prefix of the next run */
    len = next_char(s, n, i, &cp);
    cls = char_class(cp);
  }
  if (cls == CL_EXTEND) cls = CL_LETTER;
  size_t j = i + len;
  while (j < n) {
    size_t l = next_char(s, n, j, &cp);
    int c = char_class(cp);
    if ((c != cls && c != CL_EXTEND) || j + l - start > OT_BPE_MAX_RUN) break;
    j += l;
  }
  return j;
}

/* ------------------------------------------------------------ merge table */

static int32_t bpe_vocab(const ot_bpe *b) { return OT_BPE_MIN_VOCAB + b->n_merges; }

static int32_t bpe_rank(const ot_bpe *b, int32_t l, int32_t r) {
  uint64_t key = ot_bpe_pair_key(l, r);
  for (uint64_t h = ot_bpe_mix64(key) & b->hmask;; h = (h + 1) & b->hmask) {
    if (b->hkey[h] == key) return b->hrank[h];
    if (b->hkey[h] == EMPTY_KEY) return NO_RANK;
  }
}

static void hash_insert(ot_bpe *b, uint64_t key, int32_t rank) {
  uint64_t h = ot_bpe_mix64(key) & b->hmask;
  while (b->hkey[h] != EMPTY_KEY) h = (h + 1) & b->hmask;
  b->hkey[h] = key;
  b->hrank[h] = rank;
}

static void hash_resize(ot_bpe *b, uint64_t cap) {
  free(b->hkey);
  free(b->hrank);
  b->hkey = ot_xmalloc(cap * sizeof *b->hkey);
  b->hrank = ot_xmalloc(cap * sizeof *b->hrank);
  b->hmask = cap - 1;
  for (uint64_t h = 0; h < cap; h++) b->hkey[h] = EMPTY_KEY;
  for (int32_t r = 0; r < b->n_merges; r++)
    hash_insert(b, ot_bpe_pair_key(b->merges[2 * r], b->merges[2 * r + 1]), r);
}

ot_bpe *ot_bpe_new_bytes(void) {
  ot_bpe *b = ot_xcalloc(1, sizeof *b);
  b->cap_merges = 256;
  b->merges = ot_xmalloc(2 * (size_t)b->cap_merges * sizeof *b->merges);
  b->tok_off = ot_xmalloc(((size_t)b->cap_merges + OT_BPE_MIN_VOCAB + 1) * sizeof *b->tok_off);
  b->complete = ot_xmalloc((size_t)b->cap_merges + OT_BPE_MIN_VOCAB);
  b->bytes_cap = 4096;
  b->tok_bytes = ot_xmalloc(b->bytes_cap);
  for (int t = 0; t <= OT_BPE_BYTE0; t++) b->tok_off[t] = 0;
  for (int v = 0; v < 256; v++) {
    b->tok_bytes[v] = (uint8_t)v;
    b->tok_off[OT_BPE_BYTE0 + v + 1] = (size_t)v + 1;
    b->complete[OT_BPE_BYTE0 + v] = v < 0x80;
  }
  for (int t = 0; t < OT_BPE_N_SPECIAL; t++) b->complete[t] = 0;
  b->bytes_len = 256;
  hash_resize(b, 1024);
  return b;
}

static const uint8_t *tok_ptr(const ot_bpe *b, int32_t t, size_t *len) {
  *len = b->tok_off[t + 1] - b->tok_off[t];
  return b->tok_bytes + b->tok_off[t];
}

/* Whether the tokens l, r (ids >= BYTE0) may merge: whole characters with
 * whole characters, or pieces that stay within one character. */
int ot_bpe_merge_allowed(const ot_bpe *b, int32_t l, int32_t r) {
  if (b->complete[l] && b->complete[r]) return 1;
  size_t nl, nr;
  const uint8_t *pl = tok_ptr(b, l, &nl), *pr = tok_ptr(b, r, &nr);
  if (nl + nr > 4) return 0;
  uint8_t cat[4];
  memcpy(cat, pl, nl);
  memcpy(cat + nl, pr, nr);
  return utf8_piece(cat, nl + nr);
}

/* Append the merge (l, r); returns the new token id. */
int32_t ot_bpe_add_merge(ot_bpe *b, int32_t l, int32_t r) {
  if (b->n_merges == b->cap_merges) {
    b->cap_merges *= 2;
    b->merges = ot_xrealloc(b->merges, 2 * (size_t)b->cap_merges * sizeof *b->merges);
    b->tok_off = ot_xrealloc(b->tok_off, ((size_t)b->cap_merges + OT_BPE_MIN_VOCAB + 1) *
                                             sizeof *b->tok_off);
    b->complete = ot_xrealloc(b->complete, (size_t)b->cap_merges + OT_BPE_MIN_VOCAB);
  }
  size_t nl, nr;
  tok_ptr(b, l, &nl);
  tok_ptr(b, r, &nr);
  while (b->bytes_len + nl + nr > b->bytes_cap) {
    b->bytes_cap *= 2;
    b->tok_bytes = ot_xrealloc(b->tok_bytes, b->bytes_cap);
  }
  /* Copy after the realloc: the sources live in the same buffer. */
  uint8_t *dst = b->tok_bytes + b->bytes_len;
  memcpy(dst, b->tok_bytes + b->tok_off[l], nl);
  memcpy(dst + nl, b->tok_bytes + b->tok_off[r], nr);
  int32_t id = bpe_vocab(b);
  b->complete[id] = (uint8_t)utf8_valid(dst, nl + nr);
  b->bytes_len += nl + nr;
  b->tok_off[id + 1] = b->bytes_len;
  b->merges[2 * b->n_merges] = l;
  b->merges[2 * b->n_merges + 1] = r;
  b->n_merges++;
  if ((uint64_t)b->n_merges * 2 > b->hmask + 1) hash_resize(b, 2 * (b->hmask + 1));
  else hash_insert(b, ot_bpe_pair_key(l, r), b->n_merges - 1);
  return id;
}

void ot_bpe_close(ot_bpe *b) {
  if (!b) return;
  free(b->merges);
  free(b->tok_off);
  free(b->tok_bytes);
  free(b->complete);
  free(b->hkey);
  free(b->hrank);
  free(b);
}

int ot_bpe_vocab_size(const ot_bpe *b) { return bpe_vocab(b); }

const char *ot_bpe_special_name(int32_t id) {
  return id >= 0 && id < OT_BPE_N_SPECIAL ? special_names[id] : NULL;
}

int ot_bpe_token_bytes(const ot_bpe *b, int32_t id, const char **bytes, size_t *len) {
  if (id < 0 || id >= bpe_vocab(b))
    return ot_fail(OT_EINVAL, "token id %d outside the vocabulary [0, %d)", (int)id, bpe_vocab(b));
  *bytes = (const char *)tok_ptr(b, id, len);
  return OT_OK;
}

/* ----------------------------------------------------------------- encode */

/* BPE on one pre-token run of n <= OT_BPE_MAX_RUN bytes: repeatedly merge
 * every occurrence (left to right) of the lowest-rank adjacent pair. This
 * equals applying the merges in training order. Returns the symbol count. */
static int encode_run(const ot_bpe *b, const uint8_t *s, int n, int32_t *sym) {
  int32_t rank[OT_BPE_MAX_RUN];   /* rank[i]: rank of (sym[i], sym[i+1]) */
  uint8_t fresh[OT_BPE_MAX_RUN];  /* sym[i] was produced by the last merge */
  for (int i = 0; i < n; i++) sym[i] = OT_BPE_BYTE0 + s[i];
  for (int i = 0; i + 1 < n; i++) rank[i] = bpe_rank(b, sym[i], sym[i + 1]);
  while (n > 1) {
    int32_t best = NO_RANK;
    for (int i = 0; i + 1 < n; i++)
      if (rank[i] < best) best = rank[i];
    if (best == NO_RANK) break;
    int32_t z = OT_BPE_MIN_VOCAB + best;
    int w = 0;
    for (int i = 0; i < n; w++) {
      if (i + 1 < n && rank[i] == best) {
        sym[w] = z; fresh[w] = 1; i += 2;
      } else {
        sym[w] = sym[i]; fresh[w] = 0;
        if (i + 1 < n) rank[w] = rank[i];  /* still valid unless a neighbour merged */
        i++;
      }
    }
    n = w;
    for (int i = 0; i + 1 < n; i++)
      if (fresh[i] || fresh[i + 1]) rank[i] = bpe_rank(b, sym[i], sym[i + 1]);
  }
  return n;
}

int ot_bpe_encode(const ot_bpe *b, const char *text, int32_t *ids, int max_ids, int *n_ids) {
  const uint8_t *s = (const uint8_t *)text;
  size_t n = strlen(text);
  *n_ids = 0;
  if (max_ids < 0) return ot_fail(OT_EINVAL, "bpe encode: max_ids %d < 0", max_ids);
  if (n > (size_t)INT32_MAX) return ot_fail(OT_EINVAL, "bpe encode: text of %zu bytes", n);
  int32_t sym[OT_BPE_MAX_RUN];
  size_t total = 0;
  for (size_t i = 0; i < n;) {
    size_t j = ot_bpe_next_run(s, n, i);
    int k = encode_run(b, s + i, (int)(j - i), sym);
    if (total + (size_t)k <= (size_t)max_ids) memcpy(ids + total, sym, (size_t)k * sizeof *sym);
    total += (size_t)k;
    i = j;
  }
  *n_ids = (int)total;
  if (total > (size_t)max_ids)
    return ot_fail(OT_EINVAL, "bpe encode: %zu ids do not fit in %d", total, max_ids);
  return OT_OK;
}

/* ------------------------------------------------- constrained decoding */

int ot_bpe_utf8_next(const ot_bpe *b, ot_bpe_utf8 *s, int32_t id) {
  if (id < 0 || id >= bpe_vocab(b)) return 0;
  if (id < OT_BPE_N_SPECIAL) return s->need == 0;
  size_t n;
  const uint8_t *p = tok_ptr(b, id, &n);
  ot_bpe_utf8 t = *s;
  for (size_t i = 0; i < n; i++) {
    if (t.need) {
      if (!utf8_cont_ok(t.lead, t.have, p[i])) return 0;
      t.have++, t.need--;
    } else {
      const int len = utf8_seq_len(p[i]);
      if (!len) return 0;
      t.lead = p[i], t.have = 1, t.need = (uint8_t)(len - 1);
    }
  }
  *s = t;
  return 1;
}

/* ----------------------------------------------------------------- decode */

typedef struct {
  char *buf;
  size_t cap, len;
  uint8_t pend[4];
  int npend, need;
} utf8_sink;

static void sink_put(utf8_sink *k, const uint8_t *p, size_t n) {
  if (k->len + n < k->cap) memcpy(k->buf + k->len, p, n);
  k->len += n;
}

static void sink_bad(utf8_sink *k) {
  static const uint8_t fffd[3] = {0xEF, 0xBF, 0xBD};
  sink_put(k, fffd, 3);
  k->npend = 0;
}

/* Feed one byte; complete characters are written, invalid subparts become
 * U+FFFD. */
static void sink_byte(utf8_sink *k, uint8_t c) {
  if (k->npend > 0) {
    if (utf8_cont_ok(k->pend[0], k->npend, c)) {
      k->pend[k->npend++] = c;
      if (k->npend == k->need) { sink_put(k, k->pend, (size_t)k->need); k->npend = 0; }
      return;
    }
    sink_bad(k);  /* then c starts afresh */
  }
  int len = utf8_seq_len(c);
  if (len == 1) sink_put(k, &c, 1);
  else if (len == 0) sink_bad(k);
  else { k->pend[0] = c; k->npend = 1; k->need = len; }
}

int ot_bpe_decode(const ot_bpe *b, const int32_t *ids, int n, char *buf, size_t cap, size_t *len) {
  utf8_sink k = {.buf = buf, .cap = cap};
  *len = 0;
  for (int i = 0; i < n; i++) {
    if (ids[i] < 0 || ids[i] >= bpe_vocab(b))
      return ot_fail(OT_EINVAL, "bpe decode: id %d at position %d outside the vocabulary [0, %d)",
                     (int)ids[i], i, bpe_vocab(b));
    size_t nb;
    const uint8_t *p = tok_ptr(b, ids[i], &nb);
    for (size_t j = 0; j < nb; j++) sink_byte(&k, p[j]);
  }
  if (k.npend > 0) sink_bad(&k);
  *len = k.len;
  if (k.len + 1 > cap)
    return ot_fail(OT_EINVAL, "bpe decode: %zu bytes do not fit in a buffer of %zu", k.len, cap);
  buf[k.len] = '\0';
  return OT_OK;
}

/* ---------------------------------------------------------- serialisation */

#define FORMAT_LINE "ot-bpe 1"

int ot_bpe_save_string(const ot_bpe *b, char **out) {
  size_t cap = 256 + (size_t)b->n_merges * 24;
  char *s = malloc(cap);
  if (!s) return ot_fail(OT_ENOMEM, "bpe save: out of memory for %zu bytes", cap);
  size_t len = (size_t)snprintf(s, cap, FORMAT_LINE "\nspecials");
  for (int t = 0; t < OT_BPE_N_SPECIAL; t++)
    len += (size_t)snprintf(s + len, cap - len, " %s", special_names[t]);
  len += (size_t)snprintf(s + len, cap - len, "\nmerges %d\n", (int)b->n_merges);
  for (int32_t r = 0; r < b->n_merges; r++)
    len += (size_t)snprintf(s + len, cap - len, "%d %d\n", (int)b->merges[2 * r],
                            (int)b->merges[2 * r + 1]);
  OT_ASSERT(len < cap);
  *out = s;
  return OT_OK;
}

/* Copy line `*pos` of text into line[] (without the newline); returns 0 at
 * the end of the text, -1 if the line is too long. */
static int read_line(const char *text, size_t *pos, char *line, size_t cap) {
  if (text[*pos] == '\0') return 0;
  size_t n = 0;
  while (text[*pos] && text[*pos] != '\n') {
    if (n + 1 >= cap) return -1;
    line[n++] = text[(*pos)++];
  }
  if (text[*pos] == '\n') (*pos)++;
  if (n > 0 && line[n - 1] == '\r') n--;
  line[n] = '\0';
  return 1;
}

/* Parse a non-negative decimal int that fills [s, end of token). */
static int parse_int(const char *s, char **end, long *v) {
  if (*s < '0' || *s > '9') return 0;
  errno = 0;
  *v = strtol(s, end, 10);
  return errno == 0 && *v <= INT32_MAX;
}

static int load_named(ot_bpe **out, const char *text, const char *name) {
  *out = NULL;
  char line[256];
  size_t pos = 0;
  int ln = 0, rc;
  char want[128];
  size_t wl = (size_t)snprintf(want, sizeof want, "specials");
  for (int t = 0; t < OT_BPE_N_SPECIAL; t++)
    wl += (size_t)snprintf(want + wl, sizeof want - wl, " %s", special_names[t]);

  rc = read_line(text, &pos, line, sizeof line); ln++;
  if (rc <= 0 || strcmp(line, FORMAT_LINE) != 0)
    return ot_fail(OT_EINVAL, "%s:%d: expected '" FORMAT_LINE "' (not a BPE tokenizer file?)",
                   name, ln);
  rc = read_line(text, &pos, line, sizeof line); ln++;
  if (rc <= 0 || strcmp(line, want) != 0)
    return ot_fail(OT_EINVAL, "%s:%d: expected '%s'", name, ln, want);
  rc = read_line(text, &pos, line, sizeof line); ln++;
  long n_merges = -1;
  char *end = NULL;
  if (rc <= 0 || strncmp(line, "merges ", 7) != 0 || !parse_int(line + 7, &end, &n_merges) ||
      *end != '\0' || n_merges > OT_BPE_MAX_VOCAB - OT_BPE_MIN_VOCAB)
    return ot_fail(OT_EINVAL, "%s:%d: expected 'merges N' with 0 <= N <= %d", name, ln,
                   OT_BPE_MAX_VOCAB - OT_BPE_MIN_VOCAB);

  ot_bpe *b = ot_bpe_new_bytes();
  for (long r = 0; r < n_merges; r++) {
    rc = read_line(text, &pos, line, sizeof line); ln++;
    if (rc == 0) {
      ot_bpe_close(b);
      return ot_fail(OT_EINVAL, "%s:%d: file ends after %ld of %ld merges", name, ln, r, n_merges);
    }
    long l = -1, rr = -1;
    if (rc < 0 || !parse_int(line, &end, &l) || *end != ' ' || !parse_int(end + 1, &end, &rr) ||
        *end != '\0') {
      ot_bpe_close(b);
      return ot_fail(OT_EINVAL, "%s:%d: expected two token ids 'LEFT RIGHT'", name, ln);
    }
    const char *why = NULL;
    if (l < OT_BPE_BYTE0 || rr < OT_BPE_BYTE0 || l >= bpe_vocab(b) || rr >= bpe_vocab(b))
      why = "token id is special or not defined yet";
    else if (bpe_rank(b, (int32_t)l, (int32_t)rr) != NO_RANK)
      why = "duplicate merge";
    else if (!ot_bpe_merge_allowed(b, (int32_t)l, (int32_t)rr))
      why = "merge would join parts of different UTF-8 characters";
    if (why) {
      int vocab = bpe_vocab(b);
      ot_bpe_close(b);
      return ot_fail(OT_EINVAL, "%s:%d: merge %ld %ld: %s (vocabulary so far: %d)", name, ln, l,
                     rr, why, vocab);
    }
    ot_bpe_add_merge(b, (int32_t)l, (int32_t)rr);
  }
  while ((rc = read_line(text, &pos, line, sizeof line)) != 0) {
    ln++;
    if (rc < 0 || line[0] != '\0') {
      ot_bpe_close(b);
      return ot_fail(OT_EINVAL, "%s:%d: unexpected content after %ld merges", name, ln, n_merges);
    }
  }
  *out = b;
  return OT_OK;
}

int ot_bpe_load_string(ot_bpe **out, const char *text) {
  return load_named(out, text, "<bpe string>");
}

int ot_bpe_save(const ot_bpe *b, const char *path) {
  char *s = NULL;
  int rc = ot_bpe_save_string(b, &s);
  if (rc) return rc;
  size_t plen = strlen(path) + 32;
  char *tmp = ot_xmalloc(plen);
  snprintf(tmp, plen, "%s.tmp.%ld", path, (long)getpid());
  FILE *f = fopen(tmp, "wb");
  if (!f) {
    rc = ot_fail(OT_EIO, "%s: cannot create: %s", tmp, strerror(errno));
  } else {
    size_t n = strlen(s);
    int ok = fwrite(s, 1, n, f) == n && fflush(f) == 0 && fsync(fileno(f)) == 0;
    int err = errno;
    ok = (fclose(f) == 0) && ok;
    if (!ok) rc = ot_fail(OT_EIO, "%s: write failed: %s", tmp, strerror(err ? err : errno));
    else if (rename(tmp, path) != 0)
      rc = ot_fail(OT_EIO, "rename %s -> %s: %s", tmp, path, strerror(errno));
    if (rc) unlink(tmp);
  }
  free(tmp);
  free(s);
  return rc;
}

int ot_bpe_load(ot_bpe **out, const char *path) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) return ot_fail(OT_EIO, "%s: cannot open: %s", path, strerror(errno));
  size_t cap = 1 << 16, len = 0, got;
  char *text = ot_xmalloc(cap);
  while ((got = fread(text + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (len + 1 == cap) text = ot_xrealloc(text, cap *= 2);
  }
  int err = ferror(f);
  fclose(f);
  if (err) { free(text); return ot_fail(OT_EIO, "%s: read failed", path); }
  text[len] = '\0';
  int rc = OT_OK;
  if (strlen(text) != len) rc = ot_fail(OT_EINVAL, "%s: contains a NUL byte", path);
  else rc = load_named(out, text, path);
  free(text);
  return rc;
}
