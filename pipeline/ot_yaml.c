#include "ot_yaml.h"

#include "ot_common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Load the parser's input into *doc; `name` for messages. Deletes the parser. */
static int load(yaml_parser_t *parser, yaml_document_t *doc, const char *name) {
  int st = OT_OK;
  if (!yaml_parser_load(parser, doc))
    st = ot_fail(OT_EINVAL, "%s:%lu: bad YAML: %s%s%s", name, (unsigned long)parser->problem_mark.line + 1,
                 parser->problem ? parser->problem : "syntax error", parser->context ? " " : "",
                 parser->context ? parser->context : "");
  yaml_parser_delete(parser);
  return st;
}

int ot_yaml_load_file(yaml_document_t *doc, const char *path, const char *what) {
  FILE *f = fopen(path, "rb");
  if (!f) return ot_fail(OT_EINVAL, "%s: cannot open %s: %s", path, what, strerror(errno));
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  int st = load(&parser, doc, path);
  fclose(f);
  return st;
}

int ot_yaml_load_string(yaml_document_t *doc, const char *text, const char *name) {
  yaml_parser_t parser;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
  return load(&parser, doc, name);
}
