/* Config loading: defaults, overrides, and the error messages a user sees. */
#include "ot_common.h"
#include "ot_config.h"
#include "ot_test.h"

#include <stdio.h>
#include <stdlib.h>

static char path[256];

static void write_cfg(const char *text) {
  snprintf(path, sizeof path, "test_config_%d.yaml", 1);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

/* Load `text`; expect failure with a message containing every needle. */
static void expect_error(const char *text, const char *n1, const char *n2) {
  ot_config c;
  write_cfg(text);
  int st = ot_config_load(&c, path, NULL, 0);
  CHECK(st == OT_EINVAL);
  CHECK_MSG(n1);
  if (n2) CHECK_MSG(n2);
  ot_config_free(&c);
}

int main(void) {
  ot_config c;
  /* defaults without a file */
  CHECK(ot_config_load(&c, NULL, NULL, 0) == OT_OK);
  CHECK(c.extract.frames == 8 && c.extract.height == 64 && c.extract.resize == OT_RESIZE_MODE_CROP);
  CHECK(!strcmp(ot_config_origin(&c, "extract.frames"), "default"));
  ot_config_free(&c);

  /* file values, then --set overrides in order */
  write_cfg("data:\n  dir: out/x\nextract:\n  frames: 3\n  resize: letterbox\n");
  const char *sets[] = {"extract.frames=5", "data.name=日本語 ok"};
  CHECK(ot_config_load(&c, path, sets, 2) == OT_OK);
  CHECK(c.extract.frames == 5);
  CHECK(c.extract.resize == OT_RESIZE_MODE_LETTERBOX);
  CHECK(!strcmp(c.data.dir, "out/x"));
  CHECK(!strcmp(c.data.name, "日本語 ok"));
  CHECK(strstr(ot_config_origin(&c, "data.dir"), "test_config_1.yaml:2") != NULL);
  CHECK(!strcmp(ot_config_origin(&c, "extract.frames"), "--set extract.frames=5"));

  /* dump reads back to the same values and fingerprint */
  char *y = ot_config_dump(&c);
  write_cfg(y);
  ot_config c2;
  CHECK(ot_config_load(&c2, path, NULL, 0) == OT_OK);
  const char *keys[] = {"extract.frames", "extract.resize", "data.dir", "data.name", NULL};
  CHECK(ot_config_fingerprint(&c, keys) == ot_config_fingerprint(&c2, keys));
  c2.extract.frames++;
  CHECK(ot_config_fingerprint(&c, keys) != ot_config_fingerprint(&c2, keys));
  /* the same text from memory (a checkpoint's stored config): same values,
   * origins and errors named after the given name, --set still last */
  ot_config c4;
  const char *set4[] = {"extract.height=48"};
  CHECK(ot_config_load_string(&c4, y, "ckpt.h5 (config)", set4, 1) == OT_OK);
  CHECK(ot_config_fingerprint(&c, keys) == ot_config_fingerprint(&c4, keys));
  CHECK(c4.extract.height == 48 && !strcmp(c4.data.name, "日本語 ok"));
  CHECK(!strncmp(ot_config_origin(&c4, "extract.frames"), "ckpt.h5 (config):", 17));
  ot_config_free(&c4);
  CHECK(ot_config_load_string(&c4, "extract:\n  frames: many\n", "mem", NULL, 0) == OT_EINVAL);
  CHECK_MSG("mem:2");
  CHECK_MSG("extract.frames");
  ot_config_free(&c4);
  CHECK(ot_config_load_string(&c4, "extract: [1,\n", "mem", NULL, 0) == OT_EINVAL);
  CHECK_MSG("bad YAML");
  ot_config_free(&c4);
  free(y);
  /* the changed keys alone: exactly the ones given, and they read back the same */
  char *ch = ot_config_dump_changed(&c, "extract");
  CHECK(strstr(ch, "extract:\n  frames: 5\n") && !strstr(ch, "data:") && !strstr(ch, "out/x"));
  free(ch);
  ch = ot_config_dump_changed(&c, "data tag");
  CHECK(!strncmp(ch, "data:\n", 6) && strstr(ch, "  dir: \"out/x\"\n") && !strstr(ch, "extract"));
  free(ch);
  ch = ot_config_dump_changed(&c, "ext"); /* a section name, not a prefix */
  CHECK(ch[0] == '\0');
  free(ch);
  ch = ot_config_dump_changed(&c, " extract.frames data.di "); /* single keys, whole ones */
  CHECK(!strcmp(ch, "extract:\n  frames: 5\n"));
  free(ch);
  ch = ot_config_dump_changed(&c, NULL);
  CHECK(strstr(ch, "  frames: 5\n") && strstr(ch, "  dir: \"out/x\"\n") && strstr(ch, "extract:\n"));
  CHECK(!strstr(ch, "model:") && !strstr(ch, "height:"));
  write_cfg(ch);
  ot_config c3;
  CHECK(ot_config_load(&c3, path, NULL, 0) == OT_OK);
  CHECK(ot_config_fingerprint(&c, keys) == ot_config_fingerprint(&c3, keys));
  ot_config_free(&c3);
  free(ch);
  ot_config d;
  CHECK(ot_config_load(&d, NULL, NULL, 0) == OT_OK);
  ch = ot_config_dump_changed(&d, NULL);
  CHECK(ch[0] == '\0');
  free(ch);
  ot_config_free(&d);
  ot_config_free(&c2);
  ot_config_free(&c);

  /* errors name file, line and key */
  expect_error("extract:\n  frames: 8\n  frame: 3\n", "test_config_1.yaml:3: unknown key 'extract.frame'",
               "known here: frames");
  expect_error("extract:\n  frames: eight\n", ":2: key 'extract.frames' expects an integer, got 'eight'", NULL);
  expect_error("extract:\n  frames: 0\n", "must be in [1, 256]", NULL);
  expect_error("extract:\n  resize: stretch\n", "must be one of crop|letterbox", NULL);
  expect_error("extract:\n  frames: [1, 2]\n", "expects a single value, got a list", NULL);
  expect_error("extract:\n  frames:\n    a: 1\n", "'extract.frames' expects a value, got a mapping", NULL);
  expect_error("bogus:\n  x: 1\n", ":1: unknown section 'bogus' (known here: data, extract", NULL);
  expect_error("data:\n  dirr: x\n", ":2: unknown key 'data.dirr'", "known here: name, dir, train");
  expect_error("extract: 5\n", "'extract' is a section, not a value", NULL);
  expect_error("extract:\n  frames: 8\n   height: [\n", "test_config_1.yaml:3: bad YAML", NULL);
  expect_error("- a\n- b\n", "top level of a config must be a mapping", NULL);
  /* after a `---`: another document, which the loader would skip with its keys */
  expect_error("extract:\n  frames: 8\n---\nextract:\n  height: 9\n",
               "test_config_1.yaml:3: a second YAML document", NULL);
  expect_error("extract:\n  frames: 8\n---\nextract: [\n", "test_config_1.yaml:5: bad YAML", NULL);
  write_cfg("---\nextract:\n  frames: 7\n...\n---\n"); /* markers and an empty document: nothing lost */
  CHECK(ot_config_load(&c, path, NULL, 0) == OT_OK && c.extract.frames == 7);
  ot_config_free(&c);

  /* --set errors */
  const char *bad1[] = {"extract.frames"};
  CHECK(ot_config_load(&c, NULL, bad1, 1) == OT_EINVAL);
  CHECK_MSG("--set extract.frames: expected --set dotted.key=value");
  ot_config_free(&c);
  const char *bad2[] = {"extract.height=-4"};
  CHECK(ot_config_load(&c, NULL, bad2, 1) == OT_EINVAL);
  CHECK_MSG("--set extract.height=-4: key 'extract.height' must be in");
  ot_config_free(&c);

  /* missing file */
  CHECK(ot_config_load(&c, "no/such/config.yaml", NULL, 0) == OT_EINVAL);
  CHECK_MSG("no/such/config.yaml: cannot open config");
  ot_config_free(&c);
  CHECK(ot_config_load(&c, ".", NULL, 0) == OT_EINVAL); /* was "bad YAML: input error" */
  CHECK_MSG(".: is a folder, not a config file");
  ot_config_free(&c);

  /* required keys */
  CHECK(ot_config_load(&c, NULL, NULL, 0) == OT_OK);
  CHECK(ot_config_require(&c, "data.dir") == OT_EINVAL);
  CHECK_MSG("'data.dir' must be set");
  ot_config_free(&c);
  remove(path);
  return ot_test_report();
}
