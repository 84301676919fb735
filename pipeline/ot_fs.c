#include "ot_fs.h"

#include "ot_common.h"
#include "ot_hash.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int ot_fs_mkdirs(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; ; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return ot_fail(OT_EIO, "cannot create folder %s: %s", buf, strerror(errno));
      *p = c;
      if (!c) break;
    }
  }
  return OT_OK;
}

int ot_fs_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

void ot_fs_tmpname(char *buf, size_t cap, const char *path) {
  snprintf(buf, cap, "%s.tmp.%ld", path, (long)getpid());
}

static int fsync_path(const char *path, int dir) {
  int fd = open(path, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return -1;
  int r = fsync(fd);
  close(fd);
  return r;
}

int ot_fs_commit(const char *tmp, const char *path) {
  if (fsync_path(tmp, 0) != 0)
    return ot_fail(OT_EIO, "cannot sync %s: %s", tmp, strerror(errno));
  if (rename(tmp, path) != 0) {
    int e = errno;
    unlink(tmp);
    return ot_fail(OT_EIO, "cannot rename %s to %s: %s", tmp, path, strerror(e));
  }
  char dir[4096];
  ot_fs_dirname(dir, sizeof dir, path);
  fsync_path(dir, 1); /* best effort: some file systems refuse directory fsync */
  return OT_OK;
}

int ot_fs_write_atomic(const char *path, const void *data, size_t n) {
  char tmp[4200];
  ot_fs_tmpname(tmp, sizeof tmp, path);
  FILE *f = fopen(tmp, "wb");
  if (!f) return ot_fail(OT_EIO, "cannot write %s: %s", tmp, strerror(errno));
  int ok = fwrite(data, 1, n, f) == n;
  ok = (fclose(f) == 0) && ok;
  if (!ok) {
    unlink(tmp);
    return ot_fail(OT_EIO, "cannot write %s: %s", tmp, strerror(errno));
  }
  return ot_fs_commit(tmp, path);
}

int ot_fs_write_json(const char *path, const json_t *o, size_t flags) {
  char *text = json_dumps(o, flags);
  if (!text) return ot_fail(OT_ENOMEM, "%s: cannot encode JSON", path);
  size_t n = strlen(text);
  text = ot_xrealloc(text, n + 2);
  text[n++] = '\n';
  int st = ot_fs_write_atomic(path, text, n);
  free(text);
  return st;
}

uint64_t ot_fs_version_hash(const char *path, uint64_t h) {
  struct stat sb;
  int64_t v[3] = {-1, -1, -1};
  if (stat(path, &sb) == 0)
    v[0] = (int64_t)sb.st_size, v[1] = (int64_t)sb.st_mtim.tv_sec, v[2] = (int64_t)sb.st_mtim.tv_nsec;
  return ot_fnv1a64(v, sizeof v, h);
}

int ot_fs_read_all(const char *path, char **data, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return ot_fail(OT_EIO, "cannot open %s: %s", path, strerror(errno));
  size_t cap = 4096, len = 0;
  char *buf = ot_xmalloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len - 1 == 0) buf = ot_xrealloc(buf, cap *= 2);
  }
  int err = ferror(f);
  fclose(f);
  if (err) {
    free(buf);
    return ot_fail(OT_EIO, "cannot read %s", path);
  }
  buf[len] = '\0';
  *data = buf;
  if (n) *n = len;
  return OT_OK;
}

void ot_fs_dirname(char *buf, size_t cap, const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(buf, cap, ".");
  else if (slash == path) snprintf(buf, cap, "/");
  else snprintf(buf, cap, "%.*s", (int)(slash - path), path);
}

void ot_fs_join(char *buf, size_t cap, const char *base, const char *rel) {
  if (rel[0] == '/' || !base[0]) snprintf(buf, cap, "%s", rel);
  else snprintf(buf, cap, "%s/%s", base, rel);
}

void ot_lines_add(ot_lines *t, const char *line) {
  size_t l = strlen(line);
  if (t->len + l + 2 > t->cap) t->p = ot_xrealloc(t->p, t->cap = 2 * (t->len + l + 2));
  memcpy(t->p + t->len, line, l);
  t->p[t->len + l] = '\n';
  t->len += l + 1;
}

void ot_lines_free(ot_lines *t) {
  free(t->p);
  memset(t, 0, sizeof *t);
}

void ot_fs_remove_temp_files(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!strstr(e->d_name, ".tmp.")) continue;
    char p[8192];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
}

int ot_fs_lock(const char *path, int wait, int *fd_out) {
  *fd_out = -1;
  char dir[4200];
  ot_fs_dirname(dir, sizeof dir, path);
  int st = ot_fs_mkdirs(dir);
  if (st) return st;
  const int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return ot_fail(OT_EIO, "%s: cannot create the lock file: %s", path, strerror(errno));
  int r;
  while ((r = flock(fd, LOCK_EX | (wait ? 0 : LOCK_NB))) != 0 && errno == EINTR) {
  }
  if (r != 0) {
    const int why = errno;
    close(fd);
    errno = why;
    if (why == EWOULDBLOCK) return ot_fail(OT_EINVAL, "%s: held by another process", path);
    return OT_OK;
  }
  *fd_out = fd;
  return OT_OK;
}

void ot_fs_unlock(int fd) {
  if (fd >= 0) close(fd); /* closing releases the flock */
}
