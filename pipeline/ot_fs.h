/* Files: atomic output (temp name in the same folder, fsync, rename), folders,
 * small whole-file reads. A reader never sees a half-written output: either
 * the old file, no file, or the complete new one. */
#ifndef OT_FS_H
#define OT_FS_H

#include <stddef.h>
#include <stdint.h>

/* mkdir -p. OT_EIO with the failing folder named. */
int ot_fs_mkdirs(const char *path);
int ot_fs_exists(const char *path);
/* Write `n` bytes to `path` atomically. */
int ot_fs_write_atomic(const char *path, const void *data, size_t n);
/* Write the JSON value `o` (jansson's json_dumps with `flags`) and a final
 * newline to `path` atomically: the one way outputs such as index.json,
 * meta.json and reports are written. OT_ENOMEM when it cannot be encoded. */
struct json_t;
int ot_fs_write_json(const char *path, const struct json_t *o, size_t flags);
/* The temp name ot_fs_commit expects for `path` ("<path>.tmp.<pid>"), for
 * writers (HDF5) that create the file themselves. */
void ot_fs_tmpname(char *buf, size_t cap, const char *path);
/* Remove the temp files (ot_fs_tmpname's "<name>.tmp.<pid>") that writers
 * killed mid-write left in dir (for the one process that owns dir). */
void ot_fs_remove_temp_files(const char *dir);
/* An exclusive flock on `path` (created, with its folder), held in *fd until
 * ot_fs_unlock or the process ends. wait: block while another process holds
 * it; else OT_EINVAL "PATH: held by another process". On a file system
 * without locks (some NFS mounts) OT_OK with *fd = -1, errno saying why: the
 * caller warns what is then unprotected. OT_EIO when it cannot be created. */
int ot_fs_lock(const char *path, int wait, int *fd);
void ot_fs_unlock(int fd); /* accepts -1 */
/* fsync `tmp`, rename it over `path`, fsync the folder. */
int ot_fs_commit(const char *tmp, const char *path);
/* h extended with the version of the file at `path`: its size and
 * modification time (a missing file hashes as absent). For fingerprints of
 * inputs that are rewritten whole, never in place (shards, candidates). */
uint64_t ot_fs_version_hash(const char *path, uint64_t h);
/* Read a whole file; *data is malloc'd, NUL-terminated, owned by the caller. */
int ot_fs_read_all(const char *path, char **data, size_t *n);
/* Folder part of `path` into buf ("." if none). */
void ot_fs_dirname(char *buf, size_t cap, const char *path);
/* `rel` if absolute or `base` empty, else base/rel. */
void ot_fs_join(char *buf, size_t cap, const char *base, const char *rel);

/* A growing text of lines (a JSON Lines part before ot_fs_write_atomic);
 * zero-initialise it. p is NULL until the first line. */
typedef struct {
  char *p;
  size_t len, cap;
} ot_lines;
void ot_lines_add(ot_lines *t, const char *line); /* appends line + '\n' */
void ot_lines_free(ot_lines *t);                   /* back to empty */

#endif
