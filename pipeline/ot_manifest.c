#include "ot_manifest.h"

#include "ot_common.h"
#include "ot_log.h"
#include "ot_strmap.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

/* An optional field may be null: exports from tables (pandas to_json,
 * database dumps) write a missing title, group or tags as null, and such a
 * line is an item like one without the field, not an error record. */
static json_t *get_field(json_t *obj, const char *key, int required) {
  json_t *v = json_object_get(obj, key);
  return !required && json_is_null(v) ? NULL : v;
}

static int get_string(json_t *obj, const char *key, int required, char **out) {
  json_t *v = get_field(obj, key, required);
  if (!v) {
    if (required) return ot_fail(OT_EINVAL, "field '%s' missing", key);
    *out = ot_xstrdup("");
    return OT_OK;
  }
  if (!json_is_string(v)) return ot_fail(OT_EINVAL, "field '%s' must be a string", key);
  if (required && json_string_length(v) == 0) return ot_fail(OT_EINVAL, "field '%s' is empty", key);
  *out = ot_xstrdup(json_string_value(v));
  return OT_OK;
}

int ot_manifest_parse_line(const char *text, int64_t line, ot_item *item) {
  memset(item, 0, sizeof *item);
  item->line = line;
  if (text[strspn(text, " \t\r")] == '\0') return ot_fail(OT_EINVAL, "empty line");
  json_error_t jerr;
  json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
  if (!root) return ot_fail(OT_EINVAL, "bad JSON at column %d: %s", jerr.column, jerr.text);
  int st = OT_OK;
  if (!json_is_object(root)) {
    st = ot_fail(OT_EINVAL, "expected a JSON object");
    goto out;
  }
  if ((st = get_string(root, "id", 1, &item->id)) || (st = get_string(root, "path", 1, &item->path)) ||
      (st = get_string(root, "title", 0, &item->title)) ||
      (st = get_string(root, "group", 0, &item->group)))
    goto out;
  json_t *tags = get_field(root, "tags", 0);
  if (tags) {
    if (!json_is_array(tags)) {
      st = ot_fail(OT_EINVAL, "field 'tags' must be a list of strings");
      goto out;
    }
    item->has_tags = 1;
    item->tags = ot_xcalloc(json_array_size(tags), sizeof(char *));
    size_t i;
    json_t *t;
    json_array_foreach(tags, i, t) {
      if (!json_is_string(t)) {
        st = ot_fail(OT_EINVAL, "field 'tags' element %zu must be a string", i);
        goto out;
      }
      item->tags[item->n_tags++] = ot_xstrdup(json_string_value(t));
    }
  }
out:
  json_decref(root);
  if (st) ot_item_free(item);
  return st;
}

json_t *ot_manifest_error_record(int64_t line, const char *id, const char *path,
                                 const char *reason) {
  json_t *e = json_object();
  json_object_set_new(e, "line", json_integer(line));
  if (id) json_object_set_new(e, "id", json_string(id));
  if (path) json_object_set_new(e, "path", json_string(path));
  json_object_set_new(e, "reason", json_string(reason));
  return e;
}

void ot_item_free(ot_item *item) {
  free(item->id);
  free(item->path);
  free(item->title);
  free(item->group);
  for (int i = 0; i < item->n_tags; i++) free(item->tags[i]);
  free(item->tags);
  int64_t line = item->line;
  memset(item, 0, sizeof *item);
  item->line = line;
}

int ot_manifest_scan(const char *path, int64_t block, int64_t *n_lines, int64_t **offsets,
                     int64_t *n_blocks) {
  OT_ASSERT(block > 0);
  FILE *f = fopen(path, "rb");
  if (!f) return ot_fail(OT_EINVAL, "%s: cannot open manifest: %s", path, strerror(errno));
  size_t cap = 64;
  int64_t *off = ot_xmalloc(cap * sizeof *off);
  int64_t lines = 0, pos = 0, nb = 0;
  char buf[1 << 16];
  size_t got;
  int at_line_start = 1;
  while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
    for (size_t i = 0; i < got; i++) {
      if (at_line_start) {
        if (lines % block == 0) {
          if ((size_t)nb + 2 > cap) off = ot_xrealloc(off, (cap *= 2) * sizeof *off);
          off[nb++] = pos + (int64_t)i;
        }
        lines++;
        at_line_start = 0;
      }
      if (buf[i] == '\n') at_line_start = 1;
    }
    pos += (int64_t)got;
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(off);
    return ot_fail(OT_EINVAL, "%s: cannot read manifest", path);
  }
  off[nb] = pos;
  *n_lines = lines;
  *offsets = off;
  *n_blocks = nb;
  return OT_OK;
}

const char *ot_skip_utf8_bom(const char *first_line) {
  return strncmp(first_line, "\xEF\xBB\xBF", 3) ? first_line : first_line + 3;
}

struct ot_manifest_reader {
  FILE *f;
  char *buf;
  size_t cap;
  int64_t line;
  const char *text; /* the line last read (past a BOM), text_len bytes, NUL bytes included */
  size_t text_len;
  int at_file_start; /* the next line is the file's first: a UTF-8 BOM may lead it */
};

int ot_manifest_reader_open(ot_manifest_reader **out, const char *path, int64_t offset,
                            int64_t first_line) {
  FILE *f = fopen(path, "rb");
  if (!f) return ot_fail(OT_EIO, "%s: cannot open manifest: %s", path, strerror(errno));
  if (fseeko(f, (off_t)offset, SEEK_SET) != 0) {
    fclose(f);
    return ot_fail(OT_EIO, "%s: cannot seek to byte %lld", path, (long long)offset);
  }
  ot_manifest_reader *r = ot_xcalloc(1, sizeof *r);
  r->f = f;
  r->line = first_line - 1;
  r->at_file_start = offset == 0;
  *out = r;
  return OT_OK;
}

int ot_manifest_reader_next(ot_manifest_reader *r, const char **text, int64_t *line) {
  ssize_t n = getline(&r->buf, &r->cap, r->f);
  if (n < 0) return 0;
  while (n > 0 && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r')) r->buf[--n] = '\0';
  *text = r->text = r->at_file_start ? ot_skip_utf8_bom(r->buf) : r->buf;
  r->text_len = (size_t)n - (size_t)(r->text - r->buf);
  r->at_file_start = 0;
  *line = ++r->line;
  return 1;
}

int ot_manifest_reader_parse(const ot_manifest_reader *r, ot_item *item) {
  OT_ASSERT(r->text);
  const char *nul = memchr(r->text, '\0', r->text_len);
  if (nul) {
    memset(item, 0, sizeof *item);
    item->line = r->line;
    return ot_fail(OT_EINVAL, "NUL byte at column %zu: not a line of text", (size_t)(nul - r->text) + 1);
  }
  return ot_manifest_parse_line(r->text, r->line, item);
}

void ot_manifest_reader_close(ot_manifest_reader *r) {
  if (!r) return;
  fclose(r->f);
  free(r->buf);
  free(r);
}

int ot_manifest_find_repeats(const char *path, int64_t **repeats, int64_t *n) {
  *repeats = NULL, *n = 0;
  ot_manifest_reader *rd = NULL;
  int st = ot_manifest_reader_open(&rd, path, 0, 1);
  if (st) return st;
  ot_strpool ids = {0};
  ot_strmap first = {0}; /* id (the pool's copy) -> its first line */
  int64_t cap = 0;
  const char *text;
  int64_t line;
  while (ot_manifest_reader_next(rd, &text, &line)) {
    ot_item it;
    if (ot_manifest_reader_parse(rd, &it) != OT_OK) continue;
    const int64_t at = ot_strmap_get(&first, it.id);
    if (at < 0) {
      ot_strmap_put(&first, ot_strpool_intern(&ids, it.id), line);
    } else {
      if (2 * (*n + 1) > cap) *repeats = ot_xrealloc(*repeats, (size_t)(cap = cap ? 2 * cap : 64) * sizeof **repeats);
      (*repeats)[2 * *n] = line, (*repeats)[2 * *n + 1] = at, ++*n;
    }
    ot_item_free(&it);
  }
  if (ferror(rd->f)) st = ot_fail(OT_EIO, "%s: cannot read manifest", path);
  ot_manifest_reader_close(rd);
  ot_strmap_free(&first);
  ot_strpool_free(&ids);
  if (st) {
    free(*repeats);
    *repeats = NULL, *n = 0;
  } else if (*n) {
    ot_log_warn("%s: %lld line(s) repeat an earlier line's id (line %lld repeats line %lld): each goes to "
                "errors.jsonl", path, (long long)*n, (long long)(*repeats)[0], (long long)(*repeats)[1]);
  }
  return st;
}

int ot_manifest_check_unique(const int64_t *repeats, int64_t n, int64_t line) {
  int64_t lo = 0, hi = n;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (repeats[2 * mid] < line) lo = mid + 1;
    else hi = mid;
  }
  if (lo < n && repeats[2 * lo] == line)
    return ot_fail(OT_EINVAL, "id already on line %lld: ids must be unique", (long long)repeats[2 * lo + 1]);
  return OT_OK;
}
