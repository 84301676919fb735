/* Manifests: JSON Lines, one item a line,
 *   {"id": "...", "path": "...", "title": "...", "tags": ["...", ...], "group": "..."}
 * id and path are required; title, tags and group are optional; other fields
 * are ignored. Line numbers are 1-based. */
#ifndef OT_MANIFEST_H
#define OT_MANIFEST_H

#include <stdint.h>
#include <stdio.h>

typedef struct {
  char *id, *path, *title, *group; /* title and group "" when absent */
  char **tags;
  int n_tags;
  int has_tags;  /* 0 when the line has no "tags" field (items to be tagged) */
  int64_t line;
} ot_item;

/* Parse one line (without its newline). On OT_EINVAL the message says what is
 * wrong ("bad JSON at column 12: ...", "field 'id' missing") without the file
 * name, so it can go into an error record. On success *item owns its strings:
 * release with ot_item_free. */
int ot_manifest_parse_line(const char *text, int64_t line, ot_item *item);
void ot_item_free(ot_item *item);

/* The record of a manifest line that yields no item, one line of every
 * stage's errors.jsonl: {"line", "id", "path", "reason"}, id and path only
 * when the line gave them (NULL: left out). The caller owns the object. */
struct json_t;
struct json_t *ot_manifest_error_record(int64_t line, const char *id, const char *path,
                                        const char *reason);

/* Count the lines of `path` and note the byte offset where every block of
 * `block` lines starts: (*offsets)[b] for b in [0, *n_blocks], the last being
 * the file size. *offsets is malloc'd; the caller frees it. OT_EINVAL naming
 * the file when it cannot be read. */
int ot_manifest_scan(const char *path, int64_t block, int64_t *n_lines, int64_t **offsets,
                     int64_t *n_blocks);

/* The lines of `path` that repeat an earlier line's id (ids identify items in
 * every output, so each must be unique): *repeats holds *n pairs (line, first
 * line with that id), ascending by line. Lines that do not parse are left
 * out: their reader records them. Warns when it finds any. *repeats is
 * malloc'd (NULL when *n is 0); the caller frees it. OT_EIO naming the file
 * when it cannot be read. */
int ot_manifest_find_repeats(const char *path, int64_t **repeats, int64_t *n);
/* OT_OK when `line` is not among the repeats (as ot_manifest_find_repeats
 * gave them); else OT_EINVAL, the message naming the line the id is first
 * on, without the file name (for an error record, as ot_manifest_parse_line). */
int ot_manifest_check_unique(const int64_t *repeats, int64_t n, int64_t line);

/* Sequential line reader from a byte offset. */
typedef struct ot_manifest_reader ot_manifest_reader;
/* Caller owns *out; release with ot_manifest_reader_close. *out is left
 * unset on error. */
int ot_manifest_reader_open(ot_manifest_reader **out, const char *path, int64_t offset,
                            int64_t first_line);
/* Next line without its newline (valid until the next call), its line number;
 * returns 0 at end of file, 1 for a line. A UTF-8 byte order mark at the start
 * of the file is not part of the first line. */
int ot_manifest_reader_next(ot_manifest_reader *r, const char **text, int64_t *line);
/* ot_manifest_parse_line of the line ot_manifest_reader_next returned last
 * (OT_ASSERT: one was), which also refuses a line holding a NUL byte, naming
 * its column: a C-string parser would read such a line up to the NUL and
 * take what stands before it for the whole line. */
int ot_manifest_reader_parse(const ot_manifest_reader *r, ot_item *item);
void ot_manifest_reader_close(ot_manifest_reader *r); /* accepts NULL */

/* `first_line` past a leading UTF-8 byte order mark, if it has one. Editors
 * and PowerShell on Windows start UTF-8 files with it; RFC 8259 lets JSON
 * parsers ignore it, and jansson does not. For every JSON Lines reader. */
const char *ot_skip_utf8_bom(const char *first_line);

#endif
