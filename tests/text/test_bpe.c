/* Byte-level BPE: exact round trips on multilingual text (CJK, emoji ZWJ
 * sequences, combining marks), compression, token well-formedness,
 * determinism, serialisation and its error messages, buffer contracts,
 * random input; optionally the emoji benchmark texts.
 *
 * Usage: test_bpe [--require-emoji]
 *   OT_EMOJI_DATA=DIR or FILE.jsonl adds the emoji benchmark part (titles
 *   and tags of emoji-{en,zh}.train.jsonl); without it that part is skipped
 *   unless --require-emoji is given. */
#include "bpe.h"
#include "ot_common.h"

#include <jansson.h>
#include "ot_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


/* Titles and tags in many scripts; the training corpus repeats them. */
static const char *const corpus[] = {
  "Funny cat video compilation 2023", "How to cook pasta at home", "cute cat", "cats and dogs",
  "cat", "dog", "cooking", "funny", "The cat sat on the mat.", "Dog vs. cat: who wins?!",
  "可爱的猫咪视频", "搞笑猫咪合集", "如何在家做意大利面", "猫", "狗", "猫咪", "美食", "搞笑",
  "美食教程：红烧肉的做法（超简单）", "狗和猫一起玩耍", "今天天气很好，我们去公园散步。",
  "猫の動画です", "かわいい犬と猫", "고양이 동영상", "강아지",
  "😀 grinning face", "😀", "😂😂😂", "👨‍👩‍👧‍👦 family: man, woman, girl, boy", "👨‍👩‍👧‍👦",
  "🏳️‍🌈 rainbow flag", "🏳️‍🌈", "👍🏽 thumbs up: medium skin tone", "👍🏽", "👍🏿", "👍",
  "🇯🇵 flag: Japan", "🇯🇵", "🇨🇳", "1️⃣ keycap: 1", "#️⃣", "❤️ red heart", "❤️",
  "🧑🏿‍🚀 astronaut: dark skin tone", "👩‍❤️‍💋‍👨 kiss: woman, man", "🐱 cat face", "🐶 dog face",
  "笑脸 😀", "红心 ❤️", "猫脸 🐱",
  "école", "e\xcc\x81" "cole", "Zu\xcc\x88rich", "Tiếng Việt có dấu", "Ελληνικά βίντεο",
  "हिन्दी वीडियो", "फनी बिल्ली", "فيديو مضحك للقطط", "วิดีโอแมวตลก", "смешное видео с котом",
  "кот", "iPhone手机评测 2024!!", "C++ tutorial #1 (part 2/3)", "100% 真实", "Ｈｅｌｌｏ　全角",
  "tabs\tand\nnewlines  double  spaces", " leading space", "trailing space ", "   ", "",
  "naïve café — “quoted” ‘text’…", "½ cup, 3×4, 5÷2, ±1, °C, ™, ©, ®",
};
#define N_CORPUS (sizeof corpus / sizeof *corpus)

/* Never seen in training: must still round-trip. */
static const char *const held_out[] = {
  "狐狸和兔子", "🦊🐰", "👩🏽‍🔬 woman scientist", "Quarterly budget ‡ §4", "ありがとう",
  "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝒎𝒂𝒕𝒉", "a\xcc\x81\xcc\x82\xcc\x83\xcc\x84", "\xe2\x80\x8bzero\xe2\x80\x8dwidth",
  "\xef\xbb\xbf" "bom",
  "🏴\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2\xf3\xa0\x81\xb3"     /* flag + tag characters g b s */
  "\xf3\xa0\x81\xa3\xf3\xa0\x81\xb4\xf3\xa0\x81\xbf Scotland", /* c t, cancel tag */
  "x", "  ", "\n", "ok!?", "\x7f\x01", "𠜎𠜱𠝹", "ﷺ", "ǅ",
};
#define N_HELD (sizeof held_out / sizeof *held_out)

/* Independent UTF-8 validator (RFC 3629 table), for checking the library. */
static int valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0x80) { i++; continue; }
    else if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (i + len > n) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (size_t k = 2; k < len; k++)
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return 0;
    i += len;
  }
  return 1;
}

/* Token bytes are whole characters, or a run inside one character. */
static int well_formed_token(const unsigned char *s, size_t n) {
  if (valid_utf8(s, n)) return 1;
  if (n > 4) return 0;
  size_t start = 0;
  if (s[0] >= 0xC2 && s[0] <= 0xF4) start = 1;
  else if (s[0] < 0x80 || s[0] > 0xBF) return 0;
  for (size_t k = start; k < n; k++)
    if (s[k] < 0x80 || s[k] > 0xBF) return 0;
  return n <= 3 || start == 1;
}

/* Encode text and decode it again; returns the token count, -1 on error. */
static int roundtrip(const ot_bpe *b, const char *text, int check_equal) {
  int cap = (int)strlen(text) + 1, n = -1;
  int32_t *ids = malloc(sizeof *ids * (size_t)cap);
  size_t bcap = 3 * strlen(text) + 8, len = 0;
  char *buf = malloc(bcap);
  int rc = ot_bpe_encode(b, text, ids, cap, &n);
  CHECKF(rc == OT_OK, "encode '%s': %s", text, ot_errmsg());
  CHECKF(n <= (int)strlen(text), "'%s': %d tokens for %zu bytes", text, n, strlen(text));
  if (rc == OT_OK) {
    for (int i = 0; i < n; i++)
      CHECKF(ids[i] >= OT_BPE_N_SPECIAL && ids[i] < ot_bpe_vocab_size(b), "id %d", (int)ids[i]);
    rc = ot_bpe_decode(b, ids, n, buf, bcap, &len);
    CHECKF(rc == OT_OK, "decode '%s': %s", text, ot_errmsg());
    CHECKF(rc != OT_OK || valid_utf8((const unsigned char *)buf, len),
          "'%s' decodes to invalid UTF-8", text);
    if (check_equal)
      CHECKF(rc == OT_OK && len == strlen(text) && memcmp(buf, text, len) == 0,
            "'%s' decodes to '%.*s'", text, (int)len, buf);
  }
  free(ids);
  free(buf);
  return rc == OT_OK ? n : -1;
}

static char *save_str(const ot_bpe *b) {
  char *s = NULL;
  CHECKF(ot_bpe_save_string(b, &s) == OT_OK, "%s", ot_errmsg());
  return s;
}

/* The training texts: the corpus three times, numbered copies of the
 * English titles, and the held-out list never. */
static const char **training_texts(size_t *n) {
  size_t cap = 4 * N_CORPUS;
  const char **t = malloc(sizeof *t * cap);
  size_t k = 0;
  for (int rep = 0; rep < 3; rep++)
    for (size_t i = 0; i < N_CORPUS; i++) t[k++] = corpus[i];
  *n = k;
  return t;
}

static void test_multilingual(void) {
  size_t n;
  const char **texts = training_texts(&n);
  ot_bpe *b = NULL;
  double t0 = ot_now();
  CHECKF(ot_bpe_train(&b, texts, n, 1000) == OT_OK, "%s", ot_errmsg());
  double dt = ot_now() - t0;
  if (!b) { free(texts); return; }
  int vocab = ot_bpe_vocab_size(b);
  CHECKF(vocab > OT_BPE_MIN_VOCAB + 200 && vocab <= 1000, "vocab %d", vocab);

  size_t bytes = 0, tokens = 0;
  for (size_t i = 0; i < N_CORPUS; i++) {
    int k = roundtrip(b, corpus[i], 1);
    bytes += strlen(corpus[i]);
    tokens += (size_t)(k > 0 ? k : 0);
  }
  for (size_t i = 0; i < N_HELD; i++) roundtrip(b, held_out[i], 1);
  double tpb = (double)tokens / (double)bytes;
  printf("bpe multilingual: %zu texts, vocab %d, %.1f ms, %.3f tokens/byte on training texts\n", n,
         vocab, dt * 1e3, tpb);
  CHECKF(tpb < 0.35, "merges barely compress: %.3f tokens/byte", tpb);

  /* A frequent CJK character, emoji and ZWJ sequence end up as one token. */
  const char *single[] = {"猫", "😀", "👨‍👩‍👧‍👦", "❤️", " cat"};
  for (size_t i = 0; i < sizeof single / sizeof *single; i++) {
    int32_t ids[32];
    int k = 0;
    CHECKF(ot_bpe_encode(b, single[i], ids, 32, &k) == OT_OK && k == 1, "'%s' -> %d tokens",
          single[i], k);
  }
  /* Merges never cross a pre-token boundary: "cat sat" is at least two
   * tokens even though it is frequent, and " cat" keeps its space. */
  int32_t ids[64];
  int k = 0;
  CHECKF(ot_bpe_encode(b, "The cat sat", ids, 64, &k) == OT_OK && k == 3, "'The cat sat' -> %d", k);

  /* Every token: whole UTF-8 characters or a run inside one character; a
   * space never follows a non-space byte (spaces only lead a token). */
  for (int t = OT_BPE_BYTE0; t < vocab; t++) {
    const char *p;
    size_t len;
    CHECKF(ot_bpe_token_bytes(b, t, &p, &len) == OT_OK && len >= 1, "token %d", t);
    if (t < OT_BPE_BYTE0 + 256) continue;
    CHECKF(well_formed_token((const unsigned char *)p, len), "token %d '%.*s' mixes characters", t,
          (int)len, p);
    int seen_non_space = 0;
    for (size_t j = 0; j < len; j++) {
      int sp = p[j] == ' ' || (p[j] >= 9 && p[j] <= 13);
      CHECKF(!(sp && seen_non_space), "token %d '%.*s' has a space inside a word", t, (int)len, p);
      if (!sp) seen_non_space = 1;
    }
  }

  /* Tags joined by SEP inside BOS/EOS decode to the concatenated tags. */
  const char *tags[] = {"猫咪", "👍🏽", "funny cat", "e\xcc\x81" "cole"};
  int32_t seq[128];
  int pos = 0;
  seq[pos++] = OT_BPE_BOS;
  char want[256] = "";
  for (size_t i = 0; i < 4; i++) {
    if (i) seq[pos++] = OT_BPE_SEP;
    CHECKF(ot_bpe_encode(b, tags[i], seq + pos, 128 - pos, &k) == OT_OK, "%s", ot_errmsg());
    pos += k;
    strcat(want, tags[i]);
  }
  seq[pos++] = OT_BPE_EOS;
  seq[pos++] = OT_BPE_PAD;
  char buf[256];
  size_t len = 0;
  CHECKF(ot_bpe_decode(b, seq, pos, buf, sizeof buf, &len) == OT_OK && strcmp(buf, want) == 0,
        "tag sequence decodes to '%s'", buf);

  /* Special tokens: no bytes, a name; ids outside the vocabulary fail. */
  const char *p;
  CHECKF(ot_bpe_token_bytes(b, OT_BPE_SEP, &p, &len) == OT_OK && len == 0, "SEP has bytes");
  CHECKF(strcmp(ot_bpe_special_name(OT_BPE_BOS), "<bos>") == 0, "BOS name");
  CHECKF(ot_bpe_special_name(OT_BPE_BYTE0) == NULL, "byte token has a special name");
  CHECKF(ot_bpe_token_bytes(b, vocab, &p, &len) == OT_EINVAL, "id == vocab accepted");
  int32_t bad = vocab;
  CHECKF(ot_bpe_decode(b, &bad, 1, buf, sizeof buf, &len) == OT_EINVAL, "decode id == vocab");
  bad = -1;
  CHECKF(ot_bpe_decode(b, &bad, 1, buf, sizeof buf, &len) == OT_EINVAL, "decode id -1");

  /* Output buffers: the needed size is reported when it does not fit. */
  const char *text = "可爱的猫咪视频 funny cat 😀";
  int need = 0;
  CHECKF(ot_bpe_encode(b, text, NULL, 0, &need) == OT_EINVAL && need > 0, "size query -> %d", need);
  int32_t full[64];
  int got = 0;
  CHECKF(ot_bpe_encode(b, text, full, need - 1, &got) == OT_EINVAL && got == need, "short buffer");
  CHECKF(ot_bpe_encode(b, text, full, need, &got) == OT_OK && got == need, "exact buffer");
  CHECKF(ot_bpe_decode(b, full, got, buf, strlen(text), &len) == OT_EINVAL && len == strlen(text),
        "decode without room for the NUL: len %zu", len);
  CHECKF(ot_bpe_decode(b, full, got, buf, strlen(text) + 1, &len) == OT_OK && strcmp(buf, text) == 0,
        "decode with exact room");

  /* Determinism: same texts → same merges; also in another order. */
  ot_bpe *b2 = NULL, *b3 = NULL;
  const char **rev = malloc(sizeof *rev * n);
  for (size_t i = 0; i < n; i++) rev[i] = texts[n - 1 - i];
  CHECKF(ot_bpe_train(&b2, texts, n, 1000) == OT_OK, "%s", ot_errmsg());
  CHECKF(ot_bpe_train(&b3, rev, n, 1000) == OT_OK, "%s", ot_errmsg());
  char *s1 = save_str(b), *s2 = save_str(b2), *s3 = save_str(b3);
  CHECKF(s1 && s2 && strcmp(s1, s2) == 0, "two trainings differ");
  CHECKF(s1 && s3 && strcmp(s1, s3) == 0, "training depends on text order");

  /* Asking for less stops there; a tiny corpus stops when no pair repeats. */
  ot_bpe *small = NULL, *tiny = NULL;
  CHECKF(ot_bpe_train(&small, texts, n, OT_BPE_MIN_VOCAB + 10) == OT_OK &&
            ot_bpe_vocab_size(small) == OT_BPE_MIN_VOCAB + 10,
        "vocab %d", small ? ot_bpe_vocab_size(small) : -1);
  const char *one[] = {"abcabc"};
  /* ab (ties with bc, smaller ids first), then abc; "abc abc" occurs once. */
  CHECKF(ot_bpe_train(&tiny, one, 1, 5000) == OT_OK &&
            ot_bpe_vocab_size(tiny) == OT_BPE_MIN_VOCAB + 2,
        "tiny vocab %d", tiny ? ot_bpe_vocab_size(tiny) : -1);
  const char *tb = NULL;
  size_t tl = 0;
  CHECKF(tiny && ot_bpe_token_bytes(tiny, OT_BPE_MIN_VOCAB, &tb, &tl) == OT_OK && tl == 2 &&
            memcmp(tb, "ab", 2) == 0,
        "first merge of 'abcabc' is not the tie winner 'ab'");
  ot_bpe *none = NULL;
  CHECKF(ot_bpe_train(&none, texts, n, OT_BPE_MIN_VOCAB - 1) == OT_EINVAL && none == NULL,
        "vocab below the byte alphabet accepted");
  CHECKF(ot_bpe_train(&none, NULL, 0, OT_BPE_MIN_VOCAB) == OT_OK && none &&
            ot_bpe_vocab_size(none) == OT_BPE_MIN_VOCAB,
        "empty corpus");
  if (none) roundtrip(none, "byte level still works 猫", 1);

  free(s1); free(s2); free(s3); free(rev); free(texts);
  ot_bpe_close(b); ot_bpe_close(b2); ot_bpe_close(b3);
  ot_bpe_close(small); ot_bpe_close(tiny); ot_bpe_close(none);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  CHECKF(f != NULL, "cannot write %s", path);
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

/* Replace line `line` (1-based) of text with `repl` (NULL: cut the text
 * there). Returns a new string. */
static char *edit_line(const char *text, int line, const char *repl) {
  size_t cap = strlen(text) + (repl ? strlen(repl) : 0) + 2;
  char *out = malloc(cap), *o = out;
  const char *p = text;
  for (int ln = 1; *p; ln++) {
    const char *e = strchr(p, '\n');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (ln == line) {
      if (!repl) break;
      o += sprintf(o, "%s\n", repl);
    } else {
      memcpy(o, p, len); o += len; *o++ = '\n';
    }
    p += len + (e ? 1 : 0);
  }
  *o = '\0';
  return out;
}

static void expect_load_error(const char *dir, const char *text, const char *want_loc,
                              const char *what) {
  char path[512];
  snprintf(path, sizeof path, "%s/bad.bpe", dir);
  write_file(path, text);
  ot_bpe *b = NULL;
  int rc = ot_bpe_load(&b, path);
  char loc[600];
  snprintf(loc, sizeof loc, "%s:%s:", path, want_loc);
  CHECKF(rc == OT_EINVAL && b == NULL, "%s: loaded (rc %d)", what, rc);
  CHECKF(strstr(ot_errmsg(), loc) != NULL, "%s: message '%s' does not name '%s'", what, ot_errmsg(),
        loc);
  CHECKF(ot_bpe_load_string(&b, text) == OT_EINVAL && b == NULL, "%s: string loaded", what);
  snprintf(loc, sizeof loc, ":%s:", want_loc);
  CHECKF(strstr(ot_errmsg(), loc) != NULL, "%s: string message '%s'", what, ot_errmsg());
  unlink(path);
}

static void test_serialisation(void) {
  size_t n;
  const char **texts = training_texts(&n);
  ot_bpe *b = NULL, *c = NULL, *d = NULL;
  CHECKF(ot_bpe_train(&b, texts, n, 700) == OT_OK, "%s", ot_errmsg());
  free(texts);
  if (!b) return;
  char *s = save_str(b);
  CHECKF(ot_bpe_load_string(&c, s) == OT_OK, "%s", ot_errmsg());
  char *s2 = c ? save_str(c) : NULL;
  CHECKF(s2 && strcmp(s, s2) == 0, "save(load(save)) differs");
  for (size_t i = 0; c && i < N_CORPUS; i++) {
    int32_t x[512], y[512];
    int nx = 0, ny = 0;
    ot_bpe_encode(b, corpus[i], x, 512, &nx);
    ot_bpe_encode(c, corpus[i], y, 512, &ny);
    CHECKF(nx == ny && memcmp(x, y, sizeof *x * (size_t)nx) == 0, "'%s' encodes differently",
          corpus[i]);
  }

  char dir[] = "/tmp/ot_bpe_test_XXXXXX";
  CHECKF(mkdtemp(dir) != NULL, "mkdtemp");
  char path[512];
  snprintf(path, sizeof path, "%s/tok.bpe", dir);
  CHECKF(ot_bpe_save(b, path) == OT_OK, "%s", ot_errmsg());
  CHECKF(ot_bpe_load(&d, path) == OT_OK, "%s", ot_errmsg());
  char *s3 = d ? save_str(d) : NULL;
  CHECKF(s3 && strcmp(s, s3) == 0, "file round trip differs");
  CHECKF(ot_bpe_save(b, path) == OT_OK, "overwrite: %s", ot_errmsg());
  ot_bpe *e = NULL;
  snprintf(path, sizeof path, "%s/missing.bpe", dir);
  CHECKF(ot_bpe_load(&e, path) == OT_EIO && e == NULL, "missing file");
  snprintf(path, sizeof path, "%s/no-dir/tok.bpe", dir);
  CHECKF(ot_bpe_save(b, path) == OT_EIO, "save into a missing directory");

  /* Corruptions, each named by its line. Lines: 1 format, 2 specials,
   * 3 merge count, 4.. merges. */
  char *bad;
  bad = edit_line(s, 7, "12 abc");
  expect_load_error(dir, bad, "7", "garbage merge line"); free(bad);
  bad = edit_line(s, 9, "5 99999");
  expect_load_error(dir, bad, "9", "undefined token id"); free(bad);
  bad = edit_line(s, 5, "1 2");
  expect_load_error(dir, bad, "5", "special token in a merge"); free(bad);
  /* 0xE4 (a lead byte) + 'a': would join parts of different characters. */
  char mix[32];
  snprintf(mix, sizeof mix, "%d %d", OT_BPE_BYTE0 + 0xE4, OT_BPE_BYTE0 + 'a');
  bad = edit_line(s, 4, mix);
  expect_load_error(dir, bad, "4", "cross-character merge"); free(bad);
  bad = edit_line(s, 1, "ot-bpe 9");
  expect_load_error(dir, bad, "1", "wrong format version"); free(bad);
  bad = edit_line(s, 2, "specials <pad> <bos>");
  expect_load_error(dir, bad, "2", "different specials"); free(bad);
  bad = edit_line(s, 3, "merges many");
  expect_load_error(dir, bad, "3", "bad merge count"); free(bad);
  bad = edit_line(s, 20, NULL);  /* truncated after 16 merges */
  expect_load_error(dir, bad, "20", "truncated file"); free(bad);
  size_t sl = strlen(s);
  bad = malloc(sl + 16);
  memcpy(bad, s, sl);
  strcpy(bad + sl, "5 6\n");
  int last_line = 3 + (ot_bpe_vocab_size(b) - OT_BPE_MIN_VOCAB) + 1;
  char ll[16];
  snprintf(ll, sizeof ll, "%d", last_line);
  expect_load_error(dir, bad, ll, "extra line"); free(bad);
  /* A duplicate of merge 1 (line 4) placed at line 5. */
  const char *l4 = strchr(strchr(strchr(s, '\n') + 1, '\n') + 1, '\n') + 1;
  char dup[32];
  snprintf(dup, sizeof dup, "%.*s", (int)(strchr(l4, '\n') - l4), l4);
  bad = edit_line(s, 5, dup);
  expect_load_error(dir, bad, "5", "duplicate merge"); free(bad);

  snprintf(path, sizeof path, "%s/tok.bpe", dir);
  unlink(path);
  CHECKF(rmdir(dir) == 0, "temp dir not empty (leftover temp file?)");
  free(s); free(s2); free(s3);
  ot_bpe_close(b); ot_bpe_close(c); ot_bpe_close(d);
}

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static uint32_t rnd(uint32_t n) {
  rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

static size_t put_cp(char *o, uint32_t c) {
  if (c < 0x80) { o[0] = (char)c; return 1; }
  if (c < 0x800) { o[0] = (char)(0xC0 | c >> 6); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
  if (c < 0x10000) {
    o[0] = (char)(0xE0 | c >> 12); o[1] = (char)(0x80 | (c >> 6 & 0x3F));
    o[2] = (char)(0x80 | (c & 0x3F)); return 3;
  }
  o[0] = (char)(0xF0 | c >> 18); o[1] = (char)(0x80 | (c >> 12 & 0x3F));
  o[2] = (char)(0x80 | (c >> 6 & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F)); return 4;
}

/* Random strings: valid ones round-trip exactly, invalid bytes come back
 * as valid UTF-8; random id sequences always decode to valid UTF-8. */
static void test_random(void) {
  size_t n;
  const char **texts = training_texts(&n);
  ot_bpe *b = NULL;
  CHECKF(ot_bpe_train(&b, texts, n, 1000) == OT_OK, "%s", ot_errmsg());
  free(texts);
  if (!b) return;
  static const uint32_t pool[] = {' ', 'a', 'e', '!', '1', 0x301, 0x200D, 0xFE0F, 0x1F3FD, 0x732B,
                                  0x54AA, 0x1F600, 0x1F468, 0x3002, 0xFF0C, 0xE9, 0x3000, '\t',
                                  0x10FFFF, 0xD7FF, 0xE000};
  enum { N_RANDOM = 3000 };
  char text[1200];
  int32_t ids[1200];
  char out[4000];
  char **made = malloc(sizeof *made * N_RANDOM);
  int exact = 0, repaired = 0;
  for (int it = 0; it < N_RANDOM; it++) {
    size_t len = 0, want = 1 + rnd(300);
    int inject = it % 3 == 0;
    while (len < want) {
      uint32_t c = rnd(4) == 0 ? 1 + rnd(0x10FFFF) : pool[rnd(sizeof pool / sizeof *pool)];
      if (c >= 0xD800 && c <= 0xDFFF) c = 'z';
      len += put_cp(text + len, c);
    }
    if (inject) text[rnd((uint32_t)len)] = (char)(0x80 + rnd(0x80));  /* stray high byte */
    text[len] = '\0';
    len = strlen(text);
    made[it] = strdup(text);
    int k = 0;
    size_t olen = 0;
    CHECKF(ot_bpe_encode(b, text, ids, 1200, &k) == OT_OK, "%s", ot_errmsg());
    CHECKF(k <= (int)len, "%d ids for %zu bytes", k, len);
    CHECKF(ot_bpe_decode(b, ids, k, out, sizeof out, &olen) == OT_OK, "%s", ot_errmsg());
    CHECKF(valid_utf8((unsigned char *)out, olen), "decode produced invalid UTF-8");
    if (valid_utf8((unsigned char *)text, len)) {
      CHECKF(olen == len && memcmp(out, text, len) == 0, "valid random text %d changed", it);
      exact++;
    } else {
      repaired++;
    }
  }
  int vocab = ot_bpe_vocab_size(b);
  for (int it = 0; it < 3000; it++) {
    int k = 1 + (int)rnd(40);
    for (int i = 0; i < k; i++) ids[i] = (int32_t)rnd((uint32_t)vocab);
    size_t olen = 0;
    CHECKF(ot_bpe_decode(b, ids, k, out, sizeof out, &olen) == OT_OK, "%s", ot_errmsg());
    CHECKF(valid_utf8((unsigned char *)out, olen), "random ids decode to invalid UTF-8");
  }
  /* Maximal-subpart replacement: a truncated 3-byte char is one U+FFFD. */
  int32_t cut[3] = {OT_BPE_BYTE0 + 'a', OT_BPE_BYTE0 + 0xE7, OT_BPE_BYTE0 + 0x8C};
  size_t olen = 0;
  CHECKF(ot_bpe_decode(b, cut, 3, out, sizeof out, &olen) == OT_OK &&
            strcmp(out, "a\xef\xbf\xbd") == 0,
        "truncated character decodes to '%s'", out);
  printf("bpe random: %d valid strings round-trip, %d invalid ones decode to valid UTF-8\n", exact,
         repaired);
  ot_bpe_close(b);

  /* Training on the random strings themselves (stray bytes included):
   * tokens stay well formed and valid strings still round-trip. */
  CHECKF(ot_bpe_train(&b, (const char *const *)made, N_RANDOM, 3000) == OT_OK, "%s", ot_errmsg());
  for (int t = OT_BPE_BYTE0 + 256; b && t < ot_bpe_vocab_size(b); t++) {
    const char *p;
    size_t len;
    ot_bpe_token_bytes(b, t, &p, &len);
    CHECKF(well_formed_token((const unsigned char *)p, len), "token %d mixes characters", t);
  }
  for (int it = 0; b && it < N_RANDOM; it++)
    roundtrip(b, made[it], valid_utf8((unsigned char *)made[it], strlen(made[it])));
  for (int it = 0; it < N_RANDOM; it++) free(made[it]);
  free(made);
  ot_bpe_close(b);
}

/* Constrained decoding: the tokens ot_bpe_utf8_next lets through make valid
 * UTF-8 (checked by the independent validator), and it lets through every
 * valid text's own encoding, so it forbids nothing a text needs. */
static void test_utf8_next(void) {
  size_t n;
  const char **texts = training_texts(&n);
  ot_bpe *b = NULL;
  CHECKF(ot_bpe_train(&b, texts, n, 1000) == OT_OK, "%s", ot_errmsg());
  if (!b) {
    free(texts);
    return;
  }
  const int vocab = ot_bpe_vocab_size(b);
  /* every valid text's ids are accepted one by one, then a special */
  int32_t ids[1200];
  for (size_t i = 0; i < n; i++) {
    int k = 0, ok = 1;
    CHECKF(ot_bpe_encode(b, texts[i], ids, 1200, &k) == OT_OK, "%s", ot_errmsg());
    ot_bpe_utf8 st = {0};
    for (int j = 0; j < k && ok; j++) ok = ot_bpe_utf8_next(b, &st, ids[j]);
    CHECKF(ok && ot_bpe_utf8_next(b, &st, OT_BPE_EOS), "'%s': its own tokens refused", texts[i]);
  }
  free(texts);
  /* random walks through what is allowed: every finished one is valid */
  enum { WALKS = 3000 };
  int refused = 0, finished = 0;
  unsigned char bytes[4096];
  for (int w = 0; w < WALKS; w++) {
    ot_bpe_utf8 st = {0};
    size_t len = 0;
    const int steps = 1 + (int)rnd(30);
    for (int j = 0; j < steps; j++) {
      /* byte tokens half the time: they are the ones that split characters */
      const int32_t id = rnd(2) ? OT_BPE_BYTE0 + (int32_t)rnd(256) : (int32_t)rnd((uint32_t)vocab);
      if (!ot_bpe_utf8_next(b, &st, id)) {
        refused++;
        continue;
      }
      const char *p;
      size_t nb;
      ot_bpe_token_bytes(b, id, &p, &nb);
      memcpy(bytes + len, p, nb);
      len += nb;
    }
    if (ot_bpe_utf8_next(b, &st, OT_BPE_EOS)) {
      finished++;
      CHECKF(valid_utf8(bytes, len), "walk %d: allowed tokens make invalid UTF-8", w);
    } else {
      CHECKF(st.need > 0 && !valid_utf8(bytes, len), "walk %d: EOS refused on whole text", w);
    }
  }
  CHECKF(refused > 0 && finished > WALKS / 2, "%d refused, %d of %d walks finished", refused,
         finished, WALKS);
  /* by hand: 猫 is E7 8C AB */
  const int32_t cat[3] = {OT_BPE_BYTE0 + 0xE7, OT_BPE_BYTE0 + 0x8C, OT_BPE_BYTE0 + 0xAB};
  ot_bpe_utf8 st = {0};
  CHECK(!ot_bpe_utf8_next(b, &st, cat[1]));          /* a continuation at a boundary */
  CHECK(ot_bpe_utf8_next(b, &st, cat[0]) && st.need == 2);
  CHECK(!ot_bpe_utf8_next(b, &st, OT_BPE_SEP));      /* no tag ends mid-character */
  CHECK(!ot_bpe_utf8_next(b, &st, OT_BPE_BYTE0 + 'a') && st.need == 2); /* refused: unchanged */
  CHECK(ot_bpe_utf8_next(b, &st, cat[1]) && !ot_bpe_utf8_next(b, &st, OT_BPE_EOS));
  CHECK(ot_bpe_utf8_next(b, &st, cat[2]) && st.need == 0);
  CHECK(ot_bpe_utf8_next(b, &st, OT_BPE_EOS));
  ot_bpe_utf8 e0 = {0}; /* E0 80 80 would be an overlong NUL */
  CHECK(ot_bpe_utf8_next(b, &e0, OT_BPE_BYTE0 + 0xE0) && !ot_bpe_utf8_next(b, &e0, OT_BPE_BYTE0 + 0x80));
  CHECK(!ot_bpe_utf8_next(b, &e0, -1) && !ot_bpe_utf8_next(b, &e0, vocab));
  printf("bpe utf8: %d walks finished valid, %d tokens refused\n", finished, refused);
  ot_bpe_close(b);
}

/* ------------------------------------------------ emoji benchmark texts */

typedef struct { char **s; size_t n, cap; size_t bytes; } strvec;

static void push(strvec *v, const char *s) {
  if (v->n == v->cap) {
    v->cap = v->cap ? 2 * v->cap : 1024;
    v->s = realloc(v->s, sizeof *v->s * v->cap);
  }
  v->s[v->n++] = strdup(s);
  v->bytes += strlen(s);
}

/* Titles and tags of a manifest (JSON Lines); returns lines read, -1 if
 * the file does not exist. */
static long read_manifest(const char *path, strvec *v) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  char *line = NULL;
  size_t cap = 0;
  long lines = 0;
  while (getline(&line, &cap, f) > 0) {
    json_error_t err;
    json_t *j = json_loads(line, 0, &err);
    lines++;
    CHECKF(j != NULL, "%s:%ld: %s", path, lines, err.text);
    if (!j) continue;
    json_t *title = json_object_get(j, "title"), *tags = json_object_get(j, "tags");
    if (json_is_string(title)) push(v, json_string_value(title));
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) if (json_is_string(t)) push(v, json_string_value(t));
    json_decref(j);
  }
  free(line);
  fclose(f);
  return lines;
}

static void emoji_corpus(const char *name, strvec *v) {
  ot_bpe *b = NULL;
  for (int vocab = 2048; vocab <= 8192; vocab *= 2) {
    double t0 = ot_now();
    CHECKF(ot_bpe_train(&b, (const char *const *)v->s, v->n, vocab) == OT_OK, "%s", ot_errmsg());
    double train_s = ot_now() - t0;
    if (!b) return;
    size_t tokens = 0;
    int worst = 0;
    t0 = ot_now();
    for (size_t i = 0; i < v->n; i++) {
      int k = roundtrip(b, v->s[i], 1);
      if (k > 0) tokens += (size_t)k;
      if (k < 0 && ++worst < 3) fprintf(stderr, "  failed on '%s'\n", v->s[i]);
    }
    double enc_s = ot_now() - t0;
    double tpb = (double)tokens / (double)v->bytes;
    printf("bpe %s: %zu strings, %zu bytes, vocab %d (asked %d): train %.3f s, "
           "%.3f tokens/byte, %.2f tokens/string, encode+decode %.2f us/string\n",
           name, v->n, v->bytes, ot_bpe_vocab_size(b), vocab, train_s, tpb,
           (double)tokens / (double)v->n, enc_s / (double)v->n * 1e6);
    CHECKF(tpb < 0.5, "%s: %.3f tokens/byte at vocab %d", name, tpb, vocab);
    ot_bpe_close(b);
    b = NULL;
  }
}

static int test_emoji(int require) {
  const char *dir = getenv("OT_EMOJI_DATA");
  if (!dir || !*dir) {
    if (require) { CHECKF(0, "OT_EMOJI_DATA is not set"); return 0; }
    printf("bpe emoji: OT_EMOJI_DATA not set, skipping the benchmark texts\n");
    return 0;
  }
  struct stat st;
  int is_dir = stat(dir, &st) == 0 && S_ISDIR(st.st_mode);
  const char *names[2] = {"emoji-en.train.jsonl", "emoji-zh.train.jsonl"};
  strvec all = {0};
  int found = 0;
  for (int k = 0; k < (is_dir ? 2 : 1); k++) {
    char path[1024];
    if (is_dir) snprintf(path, sizeof path, "%s/%s", dir, names[k]);
    else snprintf(path, sizeof path, "%s", dir);
    strvec v = {0};
    long lines = read_manifest(path, &v);
    if (lines < 0) { printf("bpe emoji: %s not found\n", path); continue; }
    found++;
    CHECKF(v.n > 0, "%s: no titles or tags", path);
    if (v.n) emoji_corpus(is_dir ? names[k] : path, &v);
    for (size_t i = 0; i < v.n; i++) push(&all, v.s[i]), free(v.s[i]);
    free(v.s);
  }
  if (found == 2) emoji_corpus("en+zh", &all);
  for (size_t i = 0; i < all.n; i++) free(all.s[i]);
  free(all.s);
  if (!found) {
    if (require) CHECKF(0, "no emoji manifests under %s", dir);
    else printf("bpe emoji: no emoji manifests under %s, skipped\n", dir);
  }
  return found;
}

int main(int argc, char **argv) {
  int require = argc > 1 && strcmp(argv[1], "--require-emoji") == 0;
  test_multilingual();
  test_serialisation();
  test_random();
  test_utf8_next();
  test_emoji(require);
  return ot_test_report();
}
