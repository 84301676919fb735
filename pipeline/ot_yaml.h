/* Reading YAML into a libyaml document: the one place configs and job files
 * are parsed, from disk or from text held in memory (a checkpoint's stored
 * config). */
#ifndef OT_YAML_H
#define OT_YAML_H

#include <yaml.h>

/* Parse `path` into *doc; the caller deletes it (yaml_document_delete) when
 * this returns OT_OK. OT_EINVAL "PATH: cannot open WHAT: ..." when the file
 * cannot be read, "PATH:LINE: bad YAML: ..." when it does not parse,
 * "PATH:LINE: a second YAML document ..." when a `---` starts another one
 * (a file holds one document: the rest would be ignored). */
int ot_yaml_load_file(yaml_document_t *doc, const char *path, const char *what);
/* The same for the NUL-terminated `text` (borrowed); `name` stands for the
 * file in messages ("NAME:LINE: bad YAML: ..."). */
int ot_yaml_load_string(yaml_document_t *doc, const char *text, const char *name);

#endif
