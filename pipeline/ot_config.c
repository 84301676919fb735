#include "ot_config.h"
#include "ot_yaml.h"

#include "ot_common.h"
#include "ot_hash.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

static const ot_cfg_field *find_field(const char *key, size_t *idx) {
  for (size_t i = 0; i < ot_cfg_schema_len; i++)
    if (strcmp(ot_cfg_schema[i].key, key) == 0) {
      if (idx) *idx = i;
      return &ot_cfg_schema[i];
    }
  return NULL;
}

/* True if `prefix` is a section (some key starts with "prefix."). */
static int is_section(const char *prefix) {
  size_t n = strlen(prefix);
  for (size_t i = 0; i < ot_cfg_schema_len; i++)
    if (strncmp(ot_cfg_schema[i].key, prefix, n) == 0 && ot_cfg_schema[i].key[n] == '.') return 1;
  return 0;
}

/* "frames, height, ..." — the keys directly under a section, for messages. */
static void list_siblings(const char *key, char *buf, size_t cap) {
  const char *dot = strrchr(key, '.');
  size_t n = dot ? (size_t)(dot - key) + 1 : 0;
  buf[0] = '\0';
  for (size_t i = 0; i < ot_cfg_schema_len; i++) {
    const char *k = ot_cfg_schema[i].key;
    if (strncmp(k, key, n) != 0) continue;
    const char *rest = k + n;
    int len = (int)strcspn(rest, ".");
    char name[128];
    snprintf(name, sizeof name, "%.*s", len, rest);
    /* sections repeat once per key below them: list each name once */
    int seen = 0;
    for (const char *p = strstr(buf, name); p && !seen; p = strstr(p + 1, name))
      seen = (p == buf || p[-1] == ' ') && (p[len] == ',' || p[len] == '\0');
    if (seen) continue;
    size_t used = strlen(buf);
    snprintf(buf + used, cap - used, "%s%s", used ? ", " : "", name);
  }
}

/* Parse `text` into the field, recording `origin` ("FILE:LINE" or "--set ..."). */
static int set_value(ot_config *cfg, const char *key, const char *text, const char *origin) {
  size_t idx;
  const ot_cfg_field *f = find_field(key, &idx);
  if (!f) {
    char sib[1024];
    list_siblings(key, sib, sizeof sib);
    if (is_section(key))
      return ot_fail(OT_EINVAL, "%s: '%s' is a section, not a value", origin, key);
    return ot_fail(OT_EINVAL, "%s: unknown key '%s'%s%s%s", origin, key, sib[0] ? " (known here: " : "",
                   sib, sib[0] ? ")" : "");
  }
  char *base = (char *)cfg;
  char *end = NULL;
  switch (f->type) {
  case OT_CFG_INT: {
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end)
      return ot_fail(OT_EINVAL, "%s: key '%s' expects an integer, got '%s'", origin, key, text);
    if ((double)v < f->min || (double)v > f->max)
      return ot_fail(OT_EINVAL, "%s: key '%s' must be in [%g, %g], got %lld", origin, key, f->min,
                     f->max, v);
    *(int *)(base + f->offset) = (int)v;
    break;
  }
  case OT_CFG_FLOAT: {
    errno = 0;
    double v = strtod(text, &end);
    if (errno || end == text || *end || !isfinite(v))
      return ot_fail(OT_EINVAL, "%s: key '%s' expects a number, got '%s'", origin, key, text);
    if (v < f->min || v > f->max)
      return ot_fail(OT_EINVAL, "%s: key '%s' must be in [%g, %g], got %g", origin, key, f->min,
                     f->max, v);
    *(double *)(base + f->offset) = v;
    break;
  }
  case OT_CFG_BOOL:
    if (!strcmp(text, "true") || !strcmp(text, "yes") || !strcmp(text, "1"))
      *(int *)(base + f->offset) = 1;
    else if (!strcmp(text, "false") || !strcmp(text, "no") || !strcmp(text, "0"))
      *(int *)(base + f->offset) = 0;
    else
      return ot_fail(OT_EINVAL, "%s: key '%s' expects true or false, got '%s'", origin, key, text);
    break;
  case OT_CFG_STR: {
    char **slot = (char **)(base + f->offset);
    free(*slot);
    *slot = ot_xstrdup(text);
    break;
  }
  case OT_CFG_ENUM: {
    const char *c = f->choices;
    int i = 0, found = -1;
    size_t n = strlen(text);
    while (*c) {
      size_t len = strcspn(c, "|");
      if (len == n && strncmp(c, text, n) == 0) { found = i; break; }
      c += len + (c[len] == '|');
      i++;
    }
    if (found < 0)
      return ot_fail(OT_EINVAL, "%s: key '%s' must be one of %s, got '%s'", origin, key, f->choices,
                     text);
    *(int *)(base + f->offset) = found;
    break;
  }
  }
  free(cfg->origin_[idx]);
  cfg->origin_[idx] = ot_xstrdup(origin);
  return OT_OK;
}

static int walk(ot_config *cfg, yaml_document_t *doc, yaml_node_t *node, const char *prefix,
                const char *path) {
  char origin[1200];
  snprintf(origin, sizeof origin, "%s:%lu", path, (unsigned long)node->start_mark.line + 1);
  if (node->type == YAML_MAPPING_NODE) {
    if (prefix[0] && find_field(prefix, NULL))
      return ot_fail(OT_EINVAL, "%s: key '%s' expects a value, got a mapping", origin, prefix);
    for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
      yaml_node_t *k = yaml_document_get_node(doc, p->key);
      yaml_node_t *v = yaml_document_get_node(doc, p->value);
      snprintf(origin, sizeof origin, "%s:%lu", path, (unsigned long)k->start_mark.line + 1);
      if (k->type != YAML_SCALAR_NODE)
        return ot_fail(OT_EINVAL, "%s: keys must be plain names", origin);
      char key[512];
      snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", (char *)k->data.scalar.value);
      if (v->type == YAML_MAPPING_NODE) {
        if (!is_section(key)) {
          if (find_field(key, NULL))
            return ot_fail(OT_EINVAL, "%s: key '%s' expects a value, got a mapping", origin, key);
          char sib[1024];
          list_siblings(key, sib, sizeof sib);
          return ot_fail(OT_EINVAL, "%s: unknown section '%s' (known here: %s)", origin, key, sib);
        }
        int st = walk(cfg, doc, v, key, path);
        if (st) return st;
      } else if (v->type == YAML_SCALAR_NODE) {
        int st = set_value(cfg, key, (char *)v->data.scalar.value, origin);
        if (st) return st;
      } else {
        return ot_fail(OT_EINVAL, "%s: key '%s' expects a single value, got a list", origin, key);
      }
    }
    return OT_OK;
  }
  if (node->type == YAML_SCALAR_NODE && node->data.scalar.length == 0 && !prefix[0])
    return OT_OK; /* empty document */
  return ot_fail(OT_EINVAL, "%s: the top level of a config must be a mapping of sections", origin);
}

/* Apply a parsed document (deleted here); `name` for messages. */
static int apply_doc(ot_config *cfg, yaml_document_t *doc, const char *name) {
  int st = OT_OK;
  yaml_node_t *root = yaml_document_get_root_node(doc);
  if (root) st = walk(cfg, doc, root, "", name);
  yaml_document_delete(doc);
  return st;
}

/* Defaults, then the YAML of file `path` or of `text` (named `name`) when
 * given, then the --set overrides. */
static int load(ot_config *cfg, const char *path, const char *text, const char *name,
                const char *const *sets, int n_sets) {
  memset(cfg, 0, sizeof *cfg);
  cfg->origin_ = ot_xcalloc(ot_cfg_schema_len, sizeof(char *));
  for (size_t i = 0; i < ot_cfg_schema_len; i++) {
    int st = set_value(cfg, ot_cfg_schema[i].key, ot_cfg_schema[i].def, "default");
    OT_ASSERT(st == OT_OK); /* a default that fails its own schema is a bug */
  }
  if (path || text) {
    yaml_document_t doc;
    int st = path ? ot_yaml_load_file(&doc, path, "config file") : ot_yaml_load_string(&doc, text, name);
    if (st == OT_OK) st = apply_doc(cfg, &doc, name);
    if (st) return st;
  }
  for (int i = 0; i < n_sets; i++) {
    const char *eq = strchr(sets[i], '=');
    char origin[1100];
    snprintf(origin, sizeof origin, "--set %s", sets[i]);
    if (!eq || eq == sets[i])
      return ot_fail(OT_EINVAL, "%s: expected --set dotted.key=value", origin);
    char key[512];
    snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
    int st = set_value(cfg, key, eq + 1, origin);
    if (st) return st;
  }
  return OT_OK;
}

int ot_config_load(ot_config *cfg, const char *path, const char *const *sets, int n_sets) {
  return load(cfg, path, NULL, path, sets, n_sets);
}

int ot_config_load_string(ot_config *cfg, const char *yaml, const char *name, const char *const *sets,
                          int n_sets) {
  return load(cfg, NULL, yaml, name, sets, n_sets);
}

void ot_config_free(ot_config *cfg) {
  if (!cfg->origin_) return;
  for (size_t i = 0; i < ot_cfg_schema_len; i++) {
    const ot_cfg_field *f = &ot_cfg_schema[i];
    if (f->type == OT_CFG_STR) {
      char **slot = (char **)((char *)cfg + f->offset);
      free(*slot);
      *slot = NULL;
    }
    free(cfg->origin_[i]);
  }
  free(cfg->origin_);
  cfg->origin_ = NULL;
}

const char *ot_config_origin(const ot_config *cfg, const char *key) {
  size_t idx;
  if (!find_field(key, &idx)) return "unknown";
  return cfg->origin_[idx];
}

/* The value of field i as text (into buf), as the loader would read it. */
static void value_text(const ot_config *cfg, size_t i, char *buf, size_t cap) {
  const ot_cfg_field *f = &ot_cfg_schema[i];
  const char *base = (const char *)cfg;
  switch (f->type) {
  case OT_CFG_INT: snprintf(buf, cap, "%d", *(const int *)(base + f->offset)); break;
  case OT_CFG_FLOAT: snprintf(buf, cap, "%.17g", *(const double *)(base + f->offset)); break;
  case OT_CFG_BOOL: snprintf(buf, cap, "%s", *(const int *)(base + f->offset) ? "true" : "false"); break;
  case OT_CFG_STR: snprintf(buf, cap, "%s", *(char *const *)(base + f->offset)); break;
  case OT_CFG_ENUM: {
    int v = *(const int *)(base + f->offset);
    const char *c = f->choices;
    for (int k = 0; k < v; k++) c += strcspn(c, "|") + 1;
    snprintf(buf, cap, "%.*s", (int)strcspn(c, "|"), c);
    break;
  }
  }
}

int ot_config_require(const ot_config *cfg, const char *key) {
  const ot_cfg_field *f = find_field(key, NULL);
  OT_ASSERT(f && f->type == OT_CFG_STR);
  if ((*(char *const *)((const char *)cfg + f->offset))[0]) return OT_OK;
  return ot_fail(OT_EINVAL, "config: '%s' must be set (in the config file or with --set %s=...)", key, key);
}

const char *ot_config_enum_name(const char *key, int value, int *len) {
  const ot_cfg_field *f = find_field(key, NULL);
  OT_ASSERT(f && f->type == OT_CFG_ENUM && value >= 0);
  const char *c = f->choices;
  for (int i = 0; i < value; i++) {
    c = strchr(c, '|');
    OT_ASSERT(c);
    c++;
  }
  *len = (int)strcspn(c, "|");
  return c;
}

int ot_config_dir(const ot_config *cfg, const char *key, const char *default_sub, char *out,
                  size_t cap) {
  const ot_cfg_field *f = find_field(key, NULL);
  OT_ASSERT(f && f->type == OT_CFG_STR);
  const char *v = *(char *const *)((const char *)cfg + f->offset);
  int n;
  if (v[0]) n = snprintf(out, cap, "%s", v);
  else if (cfg->train.dir[0]) n = snprintf(out, cap, "%s/%s", cfg->train.dir, default_sub);
  else
    return ot_fail(OT_EINVAL, "config: '%s' must be set (or train.dir, for <train.dir>/%s)", key,
                   default_sub);
  if (n < 0 || (size_t)n >= cap) return ot_fail(OT_EINVAL, "config: '%s': path too long", key);
  return OT_OK;
}

/* Append s to the growing buffer. */
static void append(char **buf, size_t *len, size_t *cap, const char *s) {
  size_t n = strlen(s);
  if (*len + n + 1 > *cap) {
    *cap = (*len + n + 1) * 2;
    *buf = ot_xrealloc(*buf, *cap);
  }
  memcpy(*buf + *len, s, n + 1);
  *len += n;
}

/* The keys of cfg as YAML; with `base`, only those whose value differs. */
/* Whether `key` (its section: the first n bytes) is selected by the
 * space-separated `sections`: its section's name or the whole key. */
static int selected(const char *sections, const char *key, size_t n) {
  const size_t len = strlen(key);
  for (const char *s = sections + strspn(sections, " "); *s;) {
    size_t k = strcspn(s, " ");
    if ((k == n || k == len) && !strncmp(s, key, k)) return 1;
    s += k;
    s += strspn(s, " ");
  }
  return 0;
}

/* base: only the keys that differ from it; sections: only those (NULL: all). */
static char *dump(const ot_config *cfg, const ot_config *base, const char *sections) {
  char *out = NULL;
  size_t len = 0, cap = 0;
  append(&out, &len, &cap, "");
  char section[128] = "";
  for (size_t i = 0; i < ot_cfg_schema_len; i++) {
    const char *key = ot_cfg_schema[i].key, *dot = strchr(key, '.');
    OT_ASSERT(dot && !strchr(dot + 1, '.')); /* schema keys are section.name */
    if (sections && !selected(sections, key, (size_t)(dot - key))) continue;
    char val[4096], line[8400];
    value_text(cfg, i, val, sizeof val);
    if (base) {
      char was[4096];
      value_text(base, i, was, sizeof was);
      if (!strcmp(val, was)) continue;
    }
    if (strncmp(section, key, (size_t)(dot - key)) || section[dot - key]) {
      snprintf(section, sizeof section, "%.*s", (int)(dot - key), key);
      append(&out, &len, &cap, section);
      append(&out, &len, &cap, ":\n");
    }
    if (ot_cfg_schema[i].type == OT_CFG_STR) {
      /* double-quoted YAML scalar: escape backslash and quote */
      char esc[8200];
      size_t k = 0;
      for (const char *c = val; *c && k < sizeof esc - 3; c++) {
        if (*c == '"' || *c == '\\') esc[k++] = '\\';
        esc[k++] = *c;
      }
      esc[k] = '\0';
      snprintf(line, sizeof line, "  %s: \"%s\"\n", dot + 1, esc);
    } else {
      snprintf(line, sizeof line, "  %s: %s\n", dot + 1, val);
    }
    append(&out, &len, &cap, line);
  }
  return out;
}

char *ot_config_dump(const ot_config *cfg) { return dump(cfg, NULL, NULL); }

char *ot_config_dump_changed(const ot_config *cfg, const char *sections) {
  ot_config defaults;
  int st = ot_config_load(&defaults, NULL, NULL, 0);
  OT_ASSERT(st == OT_OK); /* the schema's defaults parse */
  char *out = dump(cfg, &defaults, sections);
  ot_config_free(&defaults);
  return out;
}

void ot_config_value(const ot_config *cfg, const char *key, char *buf, size_t cap) {
  size_t idx;
  OT_ASSERT(find_field(key, &idx));
  value_text(cfg, idx, buf, cap);
}

uint64_t ot_config_fingerprint(const ot_config *cfg, const char *const *keys) {
  uint64_t h = OT_FNV64_INIT;
  for (; *keys; keys++) {
    size_t idx;
    OT_ASSERT(find_field(*keys, &idx));
    char val[4096];
    value_text(cfg, idx, val, sizeof val);
    h = ot_fnv1a64(*keys, strlen(*keys), h);
    h = ot_fnv1a64("=", 1, h);
    h = ot_fnv1a64(val, strlen(val), h);
    h = ot_fnv1a64("\n", 1, h);
  }
  return h;
}

void ot_config_print_schema(const char *prefix) {
  size_t n = prefix ? strlen(prefix) : 0;
  for (size_t i = 0; i < ot_cfg_schema_len; i++) {
    const ot_cfg_field *f = &ot_cfg_schema[i];
    if (n && strncmp(f->key, prefix, n)) continue;
    printf("  %-24s %s (default: %s%s%s)\n", f->key, f->help, f->def[0] ? f->def : "\"\"",
           f->choices ? "; one of " : "", f->choices ? f->choices : "");
  }
}
