#include "ot_yaml.h"

#include "ot_common.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static int bad_yaml(const yaml_parser_t *parser, const char *name) {
  return ot_fail(OT_EINVAL, "%s:%lu: bad YAML: %s%s%s", name, (unsigned long)parser->problem_mark.line + 1,
                 parser->problem ? parser->problem : "syntax error", parser->context ? " " : "",
                 parser->context ? parser->context : "");
}

/* Load the parser's input into *doc; `name` for messages. Deletes the parser.
 * The input must be one document: yaml_parser_load stops at the end of the
 * first, so whatever followed a `---` (keys, a whole job, a syntax error)
 * would be ignored without a word. */
static int load(yaml_parser_t *parser, yaml_document_t *doc, const char *name) {
  int st = OT_OK;
  if (!yaml_parser_load(parser, doc)) {
    st = bad_yaml(parser, name);
  } else {
    /* until the stream's end (a document without a root); an empty one
     * (a `---` with nothing after it) holds no keys to lose */
    for (int more = 1; more && st == OT_OK;) {
      yaml_document_t next;
      if (!yaml_parser_load(parser, &next)) {
        st = bad_yaml(parser, name);
        break;
      }
      const yaml_node_t *root = yaml_document_get_root_node(&next);
      more = root != NULL;
      if (root && !(root->type == YAML_SCALAR_NODE && root->data.scalar.length == 0))
        st = ot_fail(OT_EINVAL, "%s:%lu: a second YAML document (after '---'): a file holds one",
                     name, (unsigned long)next.start_mark.line + 1);
      yaml_document_delete(&next);
    }
    if (st) yaml_document_delete(doc);
  }
  yaml_parser_delete(parser);
  return st;
}

int ot_yaml_load_file(yaml_document_t *doc, const char *path, const char *what) {
  FILE *f = fopen(path, "rb");
  if (!f) return ot_fail(OT_EINVAL, "%s: cannot open %s: %s", path, what, strerror(errno));
  /* a folder opens for reading; libyaml would call it "input error" */
  struct stat sb;
  if (fstat(fileno(f), &sb) == 0 && S_ISDIR(sb.st_mode)) {
    fclose(f);
    return ot_fail(OT_EINVAL, "%s: is a folder, not a %s", path, what);
  }
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
