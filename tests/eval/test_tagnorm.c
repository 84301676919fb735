/* ot_tagnorm: NFKC, case folding and white space as libutf8proc defines
 * them; invalid UTF-8 rejected with the byte offset. */
#include "ot_common.h"
#include "ot_test.h"
#include "tagnorm.h"

#include <stdlib.h>

/* in normalises to want, and normalising want changes nothing (idempotent). */
static int norm_is(const char *in, const char *want) {
  char out[256], again[256];
  size_t len = 0, len2 = 0;
  if (ot_tagnorm(in, out, sizeof out, &len) != OT_OK) {
    fprintf(stderr, "ot_tagnorm('%s') failed: %s\n", in, ot_errmsg());
    return 0;
  }
  if (strcmp(out, want) || len != strlen(want)) {
    fprintf(stderr, "ot_tagnorm('%s') = '%s' (%zu bytes), want '%s'\n", in, out, len, want);
    return 0;
  }
  return ot_tagnorm(out, again, sizeof again, &len2) == OT_OK && !strcmp(again, out) && len2 == len;
}

int main(void) {
  /* NFKC: compatibility characters become their plain forms. */
  CHECK(norm_is("ＡＢＣ", "abc"));                 /* fullwidth Latin */
  CHECK(norm_is("\xef\xac\x81sh", "fish"));       /* U+FB01 ﬁ ligature */
  CHECK(norm_is("\xe2\x91\xa0", "1"));            /* ① circled one */
  CHECK(norm_is("\xe3\x8e\x8f", "kg"));           /* ㎏ square kg */
  CHECK(norm_is("x\xc2\xb2", "x2"));              /* superscript two */
  CHECK(norm_is("\xef\xbd\xb6\xef\xbe\x9e", "\xe3\x82\xac")); /* halfwidth ｶﾞ -> ガ (composed) */
  CHECK(norm_is("ｃａｆé", "café"));
  CHECK(norm_is("cafe\xcc\x81", "caf\xc3\xa9"));  /* e + combining acute -> é (NFC composition) */
  CHECK(norm_is("\xe2\x84\xab", "\xc3\xa5"));     /* Å angstrom sign -> å */

  /* Case folding: full folding, so ß and ẞ become "ss"; Greek final sigma folds to σ. */
  CHECK(norm_is("Straße", "strasse"));
  CHECK(norm_is("STRASSE", "strasse"));
  CHECK(norm_is("\xe1\xba\x9e", "ss"));           /* ẞ U+1E9E capital sharp s */
  CHECK(norm_is("ΣΟΦΙΑ", "σοφια"));
  CHECK(norm_is("σοφίας", "σοφίασ"));             /* ς -> σ */
  CHECK(norm_is("ΌΛΑ", "όλα"));
  CHECK(norm_is("İstanbul", "i\xcc\x87stanbul")); /* İ -> i + combining dot (no Turkic rule) */
  CHECK(norm_is("New York", "new york"));

  /* White space: trimmed, runs collapsed to one ASCII space, Unicode spaces too. */
  CHECK(norm_is("  new \t\n york  ", "new york"));
  CHECK(norm_is("new\xc2\xa0york", "new york"));          /* no-break space */
  CHECK(norm_is("\xe3\x80\x80東京\xe3\x80\x80\xe3\x80\x80タワー\xe3\x80\x80", "東京 タワー")); /* ideographic */
  CHECK(norm_is("a\xe2\x80\xa8" "b", "a b"));             /* line separator */
  CHECK(norm_is("a\xc2\x85" "b", "a b"));                 /* NEL */
  CHECK(norm_is("a\xe2\x80\x83\xe2\x80\x89" "b", "a b")); /* em + thin space */
  CHECK(norm_is("   ", ""));
  CHECK(norm_is("", ""));

  /* Chinese (and emoji sequences) unchanged: no simplification, ZWJ kept. */
  CHECK(norm_is("猫咪", "猫咪"));
  CHECK(norm_is("繁體中文", "繁體中文"));
  CHECK(norm_is("\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb", "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb"));

  /* Invalid UTF-8: rejected, the message gives the byte where it goes wrong. */
  char out[64];
  size_t len;
  CHECK(ot_tagnorm("ab\xff", out, sizeof out, &len) == OT_EINVAL);
  CHECK_MSG("invalid UTF-8 at byte 2");
  CHECK(ot_tagnorm("\xc0\xaf", out, sizeof out, &len) == OT_EINVAL);     /* overlong '/' */
  CHECK_MSG("byte 0");
  CHECK(ot_tagnorm("x\xed\xa0\x80", out, sizeof out, &len) == OT_EINVAL); /* UTF-16 surrogate */
  CHECK_MSG("byte 1");
  CHECK(ot_tagnorm("猫\xe4\xb8", out, sizeof out, &len) == OT_EINVAL);    /* truncated sequence */
  CHECK_MSG("byte 3");
  CHECK(ot_tagnorm("\xf4\x90\x80\x80", out, sizeof out, &len) == OT_EINVAL); /* > U+10FFFF */

  /* Output buffer: the NUL must fit; *len tells what is needed. */
  CHECK(ot_tagnorm(" ABC ", out, 3, &len) == OT_EINVAL && len == 3);
  CHECK_MSG("3 bytes after normalisation");
  CHECK(ot_tagnorm(" ABC ", out, 4, &len) == OT_OK && len == 3 && !strcmp(out, "abc"));
  CHECK(ot_tagnorm("\xef\xac\x81", out, sizeof out, NULL) == OT_OK && !strcmp(out, "fi"));

  char *d = NULL;
  CHECK(ot_tagnorm_dup(" Ｃat\tＳ ", &d) == OT_OK && d && !strcmp(d, "cat s"));
  free(d);
  CHECK(ot_tagnorm_dup("\xff", &d) == OT_EINVAL && d == NULL);

  /* An item's distinct forms, in order, with their first spelling. */
  const char *item[6] = {"Cat", "\xff", "dog", " ", "ＣＡＴ", "Dog "};
  char *norm[6];
  int first[6];
  CHECK(ot_tagnorm_unique(item, 6, norm, first) == 2 && !strcmp(norm[0], "cat") && !strcmp(norm[1], "dog") &&
        first[0] == 0 && first[1] == 2);
  free(norm[0]), free(norm[1]);
  CHECK(ot_tagnorm_unique(item + 1, 1, norm, NULL) == 0);
  return ot_test_report();
}
