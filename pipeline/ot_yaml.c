#include "ot_yaml.h"

#include "ot_common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ot_yaml_load_file(yaml_document_t *doc, const char *path, const char *what) {
  FILE *f = fopen(path, "rb");
  if (!f) return ot_fail(OT_EINVAL, "%s: cannot open %s: %s", path, what, strerror(errno));
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  int st = OT_OK;
  if (!yaml_parser_load(&parser, doc))
    st = ot_fail(OT_EINVAL, "%s:%lu: bad YAML: %s%s%s", path, (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                 parser.context ? parser.context : "");
  yaml_parser_delete(&parser);
  fclose(f);
  return st;
}
