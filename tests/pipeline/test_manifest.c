/* Manifest parsing and block scanning. */
#include "ot_common.h"
#include "ot_manifest.h"
#include "ot_test.h"

#include <stdio.h>
#include <stdlib.h>

static void expect_bad(const char *line, const char *needle) {
  ot_item it;
  CHECK(ot_manifest_parse_line(line, 7, &it) == OT_EINVAL);
  CHECK_MSG(needle);
  CHECK(it.id == NULL && it.tags == NULL); /* nothing half-owned on failure */
}

int main(void) {
  ot_item it;
  CHECK(ot_manifest_parse_line("{\"id\":\"a1\",\"path\":\"x/1.mp4\",\"title\":\"挥手 hi\","
                               "\"tags\":[\"手\",\"wave\"],\"group\":\"1F44B\",\"extra\":3}",
                               4, &it) == OT_OK);
  CHECK(!strcmp(it.id, "a1") && !strcmp(it.path, "x/1.mp4") && !strcmp(it.title, "挥手 hi"));
  CHECK(it.n_tags == 2 && it.has_tags && !strcmp(it.tags[0], "手") && !strcmp(it.group, "1F44B"));
  CHECK(it.line == 4);
  ot_item_free(&it);
  CHECK(ot_manifest_parse_line("{\"id\":\"b\",\"path\":\"p.png\"}", 1, &it) == OT_OK);
  CHECK(!it.has_tags && it.n_tags == 0 && !strcmp(it.title, ""));
  ot_item_free(&it);

  /* null optional fields (a table's export) are absent ones; null id or path is not */
  CHECK(ot_manifest_parse_line("{\"id\":\"c\",\"path\":\"p.png\",\"title\":null,\"tags\":null,"
                               "\"group\":null}", 2, &it) == OT_OK);
  CHECK(!it.has_tags && it.n_tags == 0 && !strcmp(it.title, "") && !strcmp(it.group, ""));
  ot_item_free(&it);
  expect_bad("{\"id\":\"a\",\"path\":null}", "field 'path' must be a string");
  expect_bad("{\"id\": \"a\", \"path\": ", "bad JSON at column");
  expect_bad("", "empty line");
  expect_bad("   ", "empty line");
  expect_bad("[1,2]", "expected a JSON object");
  expect_bad("{\"path\":\"p\"}", "field 'id' missing");
  expect_bad("{\"id\":\"a\"}", "field 'path' missing");
  expect_bad("{\"id\":7,\"path\":\"p\"}", "field 'id' must be a string");
  expect_bad("{\"id\":\"\",\"path\":\"p\"}", "field 'id' is empty");
  expect_bad("{\"id\":\"a\",\"path\":\"p\",\"tags\":\"x\"}", "field 'tags' must be a list");
  expect_bad("{\"id\":\"a\",\"path\":\"p\",\"tags\":[\"x\",3]}", "element 1 must be a string");
  expect_bad("{\"id\":\"a\",\"id\":\"b\",\"path\":\"p\"}", "duplicate");

  /* scan: 7 lines (an empty one; the last without newline), blocks of 3 ->
   byte offsets of lines 1, 4, 7 */
  const char *text = "a\nbb\n\nccc\nd\ne\nf";
  FILE *f = fopen("test_manifest.jsonl", "w");
  fputs(text, f);
  fclose(f);
  int64_t n_lines, n_blocks, *off;
  CHECK(ot_manifest_scan("test_manifest.jsonl", 3, &n_lines, &off, &n_blocks) == OT_OK);
  CHECK(n_lines == 7 && n_blocks == 3);
  CHECK(off[0] == 0 && off[1] == 6 && off[2] == 14 && off[3] == (int64_t)strlen(text));
  ot_manifest_reader *r;
  CHECK(ot_manifest_reader_open(&r, "test_manifest.jsonl", off[1], 4) == OT_OK);
  const char *line;
  int64_t no;
  CHECK(ot_manifest_reader_next(r, &line, &no) && !strcmp(line, "ccc") && no == 4);
  CHECK(ot_manifest_reader_next(r, &line, &no) && !strcmp(line, "d") && no == 5);
  ot_manifest_reader_close(r);
  free(off);
  /* A UTF-8 byte order mark (Windows editors, PowerShell) starts the file, not
   * its first item; read from the file's start only: later lines keep theirs. */
  f = fopen("test_manifest.jsonl", "w");
  fputs("\xEF\xBB\xBF{\"id\":\"a\",\"path\":\"p.png\"}\r\n\xEF\xBB\xBFx\n", f);
  fclose(f);
  CHECK(ot_manifest_reader_open(&r, "test_manifest.jsonl", 0, 1) == OT_OK);
  CHECK(ot_manifest_reader_next(r, &line, &no) && no == 1);
  CHECK(ot_manifest_parse_line(line, no, &it) == OT_OK && !strcmp(it.id, "a"));
  ot_item_free(&it);
  CHECK(ot_manifest_reader_next(r, &line, &no) && no == 2 && !strcmp(line, "\xEF\xBB\xBFx"));
  ot_manifest_reader_close(r);
  /* A NUL byte inside a line: valid JSON before it must not pass for the
   * whole line; the lines around it are read as usual. */
  static const char with_nul[] = "\xEF\xBB\xBF{\"id\":\"a\",\"path\":\"p.png\"}\n"
                                 "{\"id\":\"b\",\"path\":\"q.png\"}\0{\"junk\":1}\n"
                                 "{\"id\":\"c\",\"path\":\"r.png\"}\n";
  f = fopen("test_manifest.jsonl", "wb");
  fwrite(with_nul, 1, sizeof with_nul - 1, f);
  fclose(f);
  CHECK(ot_manifest_reader_open(&r, "test_manifest.jsonl", 0, 1) == OT_OK);
  CHECK(ot_manifest_reader_next(r, &line, &no) && no == 1);
  CHECK(ot_manifest_reader_parse(r, &it) == OT_OK && !strcmp(it.id, "a") && it.line == 1);
  ot_item_free(&it);
  CHECK(ot_manifest_reader_next(r, &line, &no) && no == 2);
  CHECK(ot_manifest_parse_line(line, no, &it) == OT_OK); /* what a C string shows */
  ot_item_free(&it);
  CHECK(ot_manifest_reader_parse(r, &it) == OT_EINVAL && it.line == 2);
  CHECK_MSG("NUL byte at column 26: not a line of text");
  CHECK(ot_manifest_reader_next(r, &line, &no) && no == 3);
  CHECK(ot_manifest_reader_parse(r, &it) == OT_OK && !strcmp(it.id, "c"));
  ot_item_free(&it);
  CHECK(!ot_manifest_reader_next(r, &line, &no));
  ot_manifest_reader_close(r);
  CHECK(ot_manifest_scan("no-such-manifest.jsonl", 3, &n_lines, &off, &n_blocks) == OT_EINVAL);
  CHECK_MSG("no-such-manifest.jsonl: cannot open manifest");
  /* Repeated ids: every occurrence after the first, with the first's line;
   * a line that does not parse is neither (its reader records it). */
  f = fopen("test_manifest.jsonl", "w");
  fputs("{\"id\":\"a\",\"path\":\"1\"}\n{\"id\":\"b\",\"path\":\"2\"}\n{\"id\":\"a\",\"path\":\"3\"}\n"
        "{\"id\":\"a\"\n{\"id\":\"b\",\"path\":\"5\"}\n{\"id\":\"c\",\"path\":\"6\"}\n{\"id\":\"a\",\"path\":\"7\"}\n",
        f);
  fclose(f);
  int64_t *repeats, n_repeats;
  CHECK(ot_manifest_find_repeats("test_manifest.jsonl", &repeats, &n_repeats) == OT_OK);
  CHECK(n_repeats == 3 && repeats[0] == 3 && repeats[1] == 1 && repeats[2] == 5 && repeats[3] == 2 &&
        repeats[4] == 7 && repeats[5] == 1);
  for (int64_t l = 1; l <= 7; l++)
    CHECK((ot_manifest_check_unique(repeats, n_repeats, l) == OT_OK) == (l != 3 && l != 5 && l != 7));
  CHECK(ot_manifest_check_unique(repeats, n_repeats, 5) == OT_EINVAL);
  CHECK_MSG("id already on line 2");
  free(repeats);
  CHECK(ot_manifest_find_repeats("no-such-manifest.jsonl", &repeats, &n_repeats) == OT_EIO &&
        repeats == NULL && n_repeats == 0);
  CHECK_MSG("no-such-manifest.jsonl");
  remove("test_manifest.jsonl");
  return ot_test_report();
}
