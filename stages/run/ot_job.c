#include "ot_job.h"
#include "ot_yaml.h"

#include "ot_common.h"
#include "ot_fs.h"
#include "ot_hash.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <yaml.h>

/* A string the job owns (freed by ot_job_free). */
static char *keep(ot_job *job, const char *s) {
  if (job->n_strings_ == job->cap_strings_) {
    job->cap_strings_ = job->cap_strings_ ? 2 * job->cap_strings_ : 32;
    job->strings_ = ot_xrealloc(job->strings_, (size_t)job->cap_strings_ * sizeof *job->strings_);
  }
  return job->strings_[job->n_strings_++] = ot_xstrdup(s);
}

static int line_of(const yaml_node_t *n) { return (int)n->start_mark.line + 1; }

static const char *scalar(const yaml_node_t *n) { return (const char *)n->data.scalar.value; }

/* A mapping's keys are plain names, each at most once. */
static int check_keys(const ot_job *job, yaml_document_t *doc, yaml_node_t *map, const char *what) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key);
    if (k->type != YAML_SCALAR_NODE)
      return ot_fail(OT_EINVAL, "%s:%d: %s: keys must be plain names", job->path, line_of(k), what);
    for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
      yaml_node_t *k0 = yaml_document_get_node(doc, q->key);
      if (!strcmp(scalar(k0), scalar(k)))
        return ot_fail(OT_EINVAL, "%s:%d: %s: key '%s' given twice (first at line %d)", job->path,
                       line_of(k), what, scalar(k), line_of(k0));
    }
  }
  return OT_OK;
}

/* A scalar value that must not be empty. */
static int get_text(const ot_job *job, yaml_node_t *key, yaml_node_t *v, const char *what,
                    const char **out) {
  if (v->type != YAML_SCALAR_NODE || v->data.scalar.length == 0)
    return ot_fail(OT_EINVAL, "%s:%d: %s: '%s' expects a non-empty text value", job->path,
                   line_of(key), what, scalar(key));
  *out = scalar(v);
  return OT_OK;
}

/* `set: [a.b=v, ...]`: append each item to (*sets, *n), its line to *lines. */
static int get_sets(ot_job *job, yaml_document_t *doc, yaml_node_t *v, const char *what,
                    const char ***sets, int **lines, int *n) {
  if (v->type != YAML_SEQUENCE_NODE)
    return ot_fail(OT_EINVAL, "%s:%d: %s: 'set' expects a list of dotted.key=value items", job->path,
                   line_of(v), what);
  for (yaml_node_item_t *it = v->data.sequence.items.start; it < v->data.sequence.items.top; it++) {
    yaml_node_t *e = yaml_document_get_node(doc, *it);
    const char *eq = e->type == YAML_SCALAR_NODE ? strchr(scalar(e), '=') : NULL;
    if (!eq || eq == scalar(e))
      return ot_fail(OT_EINVAL, "%s:%d: %s: bad set item %s%s%s: expected dotted.key=value",
                     job->path, line_of(e), what, eq || e->type == YAML_SCALAR_NODE ? "'" : "",
                     e->type == YAML_SCALAR_NODE ? scalar(e) : "(not a text value)",
                     eq || e->type == YAML_SCALAR_NODE ? "'" : "");
    *sets = ot_xrealloc(*sets, (size_t)(*n + 1) * sizeof **sets);
    *lines = ot_xrealloc(*lines, (size_t)(*n + 1) * sizeof **lines);
    (*lines)[*n] = line_of(e);
    (*sets)[(*n)++] = keep(job, scalar(e));
  }
  return OT_OK;
}

/* A step name is a marker file name: letters, digits, '_', '-', '.', not first '.'. */
enum { NAME_MAX_LEN = 200 }; /* "<name>.started.tmp.<pid>" must fit a file name (255 bytes) */
static int good_name(const char *s) {
  if (!s[0] || s[0] == '.' || strlen(s) > NAME_MAX_LEN) return 0;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
          *s == '_' || *s == '-' || *s == '.'))
      return 0;
  return 1;
}

/* `after: [name, ...]`: earlier steps, each once; absent: the step before. */
static int get_after(ot_job *job, yaml_document_t *doc, yaml_node_t *v, const char *what, ot_job_step *s) {
  const int self = (int)(s - job->steps);
  if (!v) {
    s->n_after = self > 0;
    s->after = ot_xcalloc(1, sizeof *s->after);
    s->after[0] = self - 1;
    return OT_OK;
  }
  if (v->type != YAML_SEQUENCE_NODE)
    return ot_fail(OT_EINVAL, "%s:%d: %s: 'after' expects a list of earlier step names ([] for none)",
                   job->path, line_of(v), what);
  int n = (int)(v->data.sequence.items.top - v->data.sequence.items.start);
  s->after = ot_xcalloc((size_t)n + 1, sizeof *s->after);
  for (int i = 0; i < n; i++) {
    yaml_node_t *e = yaml_document_get_node(doc, v->data.sequence.items.start[i]);
    if (e->type != YAML_SCALAR_NODE)
      return ot_fail(OT_EINVAL, "%s:%d: %s: after: item %d is not a step name (a %s)", job->path, line_of(e),
                     what, i + 1, e->type == YAML_MAPPING_NODE ? "mapping" : "list");
    const char *name = scalar(e);
    int found = -1;
    for (int j = 0; j < self && found < 0; j++)
      if (!strcmp(job->steps[j].name, name)) found = j;
    if (found < 0)
      return ot_fail(OT_EINVAL, "%s:%d: %s: after: '%s' is not the name of an earlier step", job->path,
                     line_of(e), what, name);
    for (int j = 0; j < s->n_after; j++)
      if (s->after[j] == found)
        return ot_fail(OT_EINVAL, "%s:%d: %s: after: '%s' given twice", job->path, line_of(e), what, name);
    s->after[s->n_after++] = found;
  }
  return OT_OK;
}

static int parse_step(ot_job *job, yaml_document_t *doc, yaml_node_t *node, const char *const *stage_names,
                      const char *job_config, int job_config_line, const char *const *job_sets,
                      const int *job_set_lines, int n_job_sets, const char *const *extra_sets,
                      int n_extra, ot_job_step *s) {
  s->line = line_of(node);
  char what[160];
  snprintf(what, sizeof what, "step %d", (int)(s - job->steps) + 1);
  if (node->type != YAML_MAPPING_NODE)
    return ot_fail(OT_EINVAL, "%s:%d: %s: expected a mapping like {name: NAME, stage: STAGE}",
                   job->path, s->line, what);
  int st = check_keys(job, doc, node, what);
  for (yaml_node_pair_t *p = node->data.mapping.pairs.start; st == OT_OK && p < node->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
    if (!strcmp(scalar(k), "name") && v->type == YAML_SCALAR_NODE && v->data.scalar.length)
      snprintf(what, sizeof what, "step '%s'", scalar(v)); /* messages name the step from the start */
  }
  const char *name = NULL, *stage = NULL, *run = NULL, *config = NULL;
  const char **own_sets = NULL;
  int *own_lines = NULL;
  int n_own = 0, set_line = 0, config_line = 0;
  yaml_node_t *after = NULL;
  for (yaml_node_pair_t *p = node->data.mapping.pairs.start; st == OT_OK && p < node->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
    const char *key = scalar(k);
    if (!strcmp(key, "name")) st = get_text(job, k, v, what, &name);
    else if (!strcmp(key, "stage")) st = get_text(job, k, v, what, &stage);
    else if (!strcmp(key, "run")) st = get_text(job, k, v, what, &run);
    else if (!strcmp(key, "config")) { config_line = line_of(k); st = get_text(job, k, v, what, &config); }
    else if (!strcmp(key, "set")) {
      set_line = line_of(k);
      st = get_sets(job, doc, v, what, &own_sets, &own_lines, &n_own);
    }
    else if (!strcmp(key, "after")) after = v;
    else
      st = ot_fail(OT_EINVAL, "%s:%d: %s: unknown key '%s' (known: name, stage, run, config, set, after)",
                   job->path, line_of(k), what, key);
  }
  if (st == OT_OK && !name)
    st = ot_fail(OT_EINVAL, "%s:%d: %s: missing name (every step needs a unique `name:`)", job->path,
                 s->line, what);
  if (st == OT_OK && !good_name(name))
    st = ot_fail(OT_EINVAL, "%s:%d: %s: name '%s' must be letters, digits, '_', '-' or '.' (not first), "
                 "at most %d of them", job->path, s->line, what, name, NAME_MAX_LEN);
  for (ot_job_step *o = job->steps; st == OT_OK && o < s; o++)
    if (!strcmp(o->name, name))
      st = ot_fail(OT_EINVAL, "%s:%d: step '%s': duplicate name (first used at line %d)", job->path,
                   s->line, name, o->line);
  if (st == OT_OK && !stage == !run)
    st = ot_fail(OT_EINVAL, "%s:%d: %s: give exactly one of `stage:` (a pipeline stage) and `run:` (a shell command)",
                 job->path, s->line, what);
  if (st == OT_OK && stage) {
    int known = 0;
    char list[256] = "";
    for (const char *const *n = stage_names; *n; n++) {
      known |= !strcmp(*n, stage);
      size_t used = strlen(list);
      snprintf(list + used, sizeof list - used, "%s%s", used ? ", " : "", *n);
    }
    if (!known)
      st = ot_fail(OT_EINVAL, "%s:%d: %s: unknown stage '%s' (stages: %s)", job->path, s->line, what,
                   stage, list);
    else if (!config && !job_config)
      st = ot_fail(OT_EINVAL, "%s:%d: %s: no config: set `config:` at the top of the job or in the step",
                   job->path, s->line, what);
  }
  if (st == OT_OK && run && (config || n_own))
    st = ot_fail(OT_EINVAL, "%s:%d: %s: a shell step (run:) takes no config or set", job->path,
                 config ? s->line : set_line, what);
  if (st == OT_OK) st = get_after(job, doc, after, what, s);
  if (st == OT_OK) {
    s->name = keep(job, name);
    if (stage) {
      s->stage = keep(job, stage);
      s->config = keep(job, config ? config : job_config);
      s->config_line = config ? config_line : job_config_line;
      s->n_sets = n_job_sets + n_own + n_extra;
      s->sets = ot_xcalloc((size_t)s->n_sets + 1, sizeof *s->sets);
      s->set_lines = ot_xcalloc((size_t)s->n_sets + 1, sizeof *s->set_lines); /* extras: 0 */
      /* each list may be NULL when empty: memcpy must not see NULL */
      if (n_job_sets) memcpy(s->sets, job_sets, (size_t)n_job_sets * sizeof *s->sets);
      if (n_own) memcpy(s->sets + n_job_sets, own_sets, (size_t)n_own * sizeof *s->sets);
      if (n_extra) memcpy(s->sets + n_job_sets + n_own, extra_sets, (size_t)n_extra * sizeof *s->sets);
      if (n_job_sets) memcpy(s->set_lines, job_set_lines, (size_t)n_job_sets * sizeof *s->set_lines);
      if (n_own) memcpy(s->set_lines + n_job_sets, own_lines, (size_t)n_own * sizeof *s->set_lines);
    } else {
      s->command = keep(job, run);
    }
  }
  free(own_sets);
  free(own_lines);
  return st;
}

static int parse_job(ot_job *job, yaml_document_t *doc, const char *const *stage_names,
                     const char *const *extra_sets, int n_extra) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  if (!root || root->type != YAML_MAPPING_NODE)
    return ot_fail(OT_EINVAL, "%s:%d: a job file is a mapping with `steps:` (see ot-run --help)",
                   job->path, root ? line_of(root) : 1);
  int st = check_keys(job, doc, root, "job");
  const char *config = NULL, *state = NULL;
  const char **sets = NULL;
  int *set_lines = NULL;
  int n_sets = 0, config_line = 0;
  yaml_node_t *steps = NULL, *steps_key = NULL;
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; st == OT_OK && p < root->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(doc, p->key), *v = yaml_document_get_node(doc, p->value);
    const char *key = scalar(k);
    if (!strcmp(key, "config")) { config_line = line_of(k); st = get_text(job, k, v, "job", &config); }
    else if (!strcmp(key, "state")) st = get_text(job, k, v, "job", &state);
    else if (!strcmp(key, "set")) st = get_sets(job, doc, v, "job", &sets, &set_lines, &n_sets);
    else if (!strcmp(key, "steps")) { steps = v; steps_key = k; }
    else
      st = ot_fail(OT_EINVAL, "%s:%d: unknown key '%s' (known: config, set, state, steps)", job->path,
                   line_of(k), key);
  }
  if (st == OT_OK && !steps)
    st = ot_fail(OT_EINVAL, "%s:%d: missing `steps:` (a list of {name, stage|run, config, set})",
                 job->path, line_of(root));
  if (st == OT_OK && (steps->type != YAML_SEQUENCE_NODE ||
                      steps->data.sequence.items.top == steps->data.sequence.items.start))
    st = ot_fail(OT_EINVAL, "%s:%d: `steps:` expects a non-empty list of steps", job->path,
                 line_of(steps_key));
  const char **extra = NULL;
  if (st == OT_OK) {
    extra = ot_xcalloc((size_t)n_extra + 1, sizeof *extra);
    for (int i = 0; i < n_extra; i++) extra[i] = keep(job, extra_sets[i]);
    int n = (int)(steps->data.sequence.items.top - steps->data.sequence.items.start);
    job->steps = ot_xcalloc((size_t)n, sizeof *job->steps);
    for (int i = 0; i < n && st == OT_OK; i++) {
      yaml_node_t *node = yaml_document_get_node(doc, steps->data.sequence.items.start[i]);
      st = parse_step(job, doc, node, stage_names, config, config_line, sets, set_lines, n_sets, extra,
                      n_extra, &job->steps[i]);
      job->n_steps = i + 1;
    }
  }
  if (st == OT_OK) {
    if (state) {
      job->state_dir = keep(job, state);
    } else { /* runs/<file name without .yaml/.yml> */
      const char *base = strrchr(job->path, '/');
      base = base ? base + 1 : job->path;
      size_t n = strlen(base);
      if (n > 5 && !strcmp(base + n - 5, ".yaml")) n -= 5;
      else if (n > 4 && !strcmp(base + n - 4, ".yml")) n -= 4;
      char dir[4200];
      snprintf(dir, sizeof dir, "runs/%.*s", (int)n, base);
      job->state_dir = keep(job, dir);
    }
  }
  free(extra);
  free(sets);
  free(set_lines);
  return st;
}

int ot_job_load(ot_job *job, const char *path, const char *const *stage_names,
                const char *const *extra_sets, int n_extra_sets) {
  memset(job, 0, sizeof *job);
  job->path = keep(job, path);
  yaml_document_t doc;
  int st = ot_yaml_load_file(&doc, path, "job file");
  if (st) return st;
  st = parse_job(job, &doc, stage_names, extra_sets, n_extra_sets);
  yaml_document_delete(&doc);
  return st;
}

void ot_job_free(ot_job *job) {
  for (int i = 0; i < job->n_steps; i++)
    free(job->steps[i].sets), free(job->steps[i].set_lines), free(job->steps[i].after);
  free(job->steps);
  for (int i = 0; i < job->n_strings_; i++) free(job->strings_[i]);
  free(job->strings_);
  memset(job, 0, sizeof *job);
}

uint64_t ot_job_step_hash(const ot_job_step *s, const ot_config *cfg, const char *sections, char **text) {
  OT_ASSERT(!s->stage == !cfg);
  *text = s->stage ? ot_config_dump(cfg) : ot_xstrdup(s->command);
  char *id = s->stage ? ot_config_dump_changed(cfg, sections) : ot_xstrdup(s->command);
  const char *kind = s->stage ? s->stage : "run";
  uint64_t h = ot_fnv1a64(kind, strlen(kind), OT_FNV64_INIT);
  h = ot_fnv1a64("\n", 1, h);
  h = ot_fnv1a64(id, strlen(id), h);
  free(id);
  return h;
}

uint64_t ot_job_inputs_hash(uint64_t h, const ot_config *cfg, const char *inputs) {
  for (const char *k = inputs; k && *k;) {
    size_t len = strcspn(k, " ");
    char key[128], path[4096];
    snprintf(key, sizeof key, "%.*s", (int)len, k);
    k += len + (k[len] == ' ');
    ot_config_value(cfg, key, path, sizeof path);
    if (!path[0]) continue;
    h = ot_fnv1a64(key, strlen(key), h);
    FILE *f = fopen(path, "rb");
    if (!f) {
      h = ot_fnv1a64("missing", 7, h);
      continue;
    }
    enum { CHUNK = 1 << 20 };
    char *buf = ot_xmalloc(CHUNK);
    size_t n;
    while ((n = fread(buf, 1, CHUNK, f)) > 0) h = ot_fnv1a64(buf, n, h);
    free(buf);
    fclose(f);
  }
  return h;
}

void ot_job_marker_path(const ot_job *job, const ot_job_step *s, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s.done", job->state_dir, s->name);
}

/* The marker's first line: what a matching marker starts with. */
static void header(char *buf, size_t cap, const ot_job_step *s, uint64_t key) {
  snprintf(buf, cap, "# ot-run step %s (%s), config hash %016" PRIx64 "\n", s->name,
           s->stage ? s->stage : "shell", key);
}

void ot_job_started_path(const ot_job *job, const ot_job_step *s, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s.started", job->state_dir, s->name);
}

#define RUN_LINE "# run "
#define BUILD_LINE "# build "

/* Line `k` (0 = first) of a marker into buf when it starts with `prefix`
 * (the prefix left out); 0 and "" otherwise (absent, or an older marker). */
static int marker_line(const char *marker, int k, const char *prefix, char *buf, size_t cap) {
  char *data = NULL;
  size_t n = 0;
  buf[0] = '\0';
  if (!ot_fs_exists(marker) || ot_fs_read_all(marker, &data, &n) != OT_OK) return 0;
  const char *line = data, *end = data + n;
  for (int i = 0; i < k && line < end; i++) {
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    line = nl ? nl + 1 : end;
  }
  const size_t np = strlen(prefix);
  int found = (size_t)(end - line) > np && !strncmp(line, prefix, np);
  if (found) {
    line += np;
    const char *nl = memchr(line, '\n', (size_t)(end - line));
    snprintf(buf, cap, "%.*s", (int)((nl ? nl : end) - line), line);
  }
  free(data);
  return found;
}

uint64_t ot_job_marker_run_id(const char *marker) {
  char id[64];
  return marker_line(marker, 1, RUN_LINE, id, sizeof id) ? strtoull(id, NULL, 16) : 0;
}

uint64_t ot_job_step_key(uint64_t hash, const char *const *dep_markers, int n) {
  uint64_t key = hash;
  for (int i = 0; i < n; i++) {
    uint64_t id = ot_job_marker_run_id(dep_markers[i]);
    if (id) key = ot_fnv1a64(&id, sizeof id, key);
  }
  return key;
}

int ot_job_marker_matches(const char *marker, const ot_job_step *s, uint64_t key, int *stale) {
  *stale = 0;
  char *data = NULL, head[512];
  size_t n = 0;
  if (!ot_fs_exists(marker) || ot_fs_read_all(marker, &data, &n) != OT_OK) return 0;
  header(head, sizeof head, s, key);
  int same = n >= strlen(head) && !strncmp(data, head, strlen(head));
  free(data);
  *stale = !same;
  return same;
}

int ot_job_marker_build(const char *marker, char *buf, size_t cap) {
  return marker_line(marker, 2, BUILD_LINE, buf, cap);
}

int ot_job_marker_write(const char *marker, const ot_job_step *s, uint64_t key, const char *build,
                        const char *text) {
  char dir[4200], head[600];
  ot_fs_dirname(dir, sizeof dir, marker);
  int st = ot_fs_mkdirs(dir);
  if (st) return st;
  header(head, sizeof head, s, key);
  /* unique per write: steps after this one see that it ran again */
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  uint64_t seed[3] = {(uint64_t)ts.tv_sec, (uint64_t)ts.tv_nsec, (uint64_t)getpid()};
  uint64_t id = ot_fnv1a64(seed, sizeof seed, key);
  id += !id; /* 0 means "no run id" */
  snprintf(head + strlen(head), sizeof head - strlen(head), RUN_LINE "%016" PRIx64 "\n" BUILD_LINE "%s\n",
           id, build);
  size_t nh = strlen(head), nt = strlen(text);
  char *buf = ot_xmalloc(nh + nt + 2);
  memcpy(buf, head, nh);
  memcpy(buf + nh, text, nt);
  size_t n = nh + nt;
  if (nt && text[nt - 1] != '\n') buf[n++] = '\n';
  st = ot_fs_write_atomic(marker, buf, n);
  free(buf);
  return st;
}

int ot_job_started_write(const char *started, const ot_job_step *s, uint64_t key, const char *build) {
  char dir[4200], head[1024];
  ot_fs_dirname(dir, sizeof dir, started);
  int st = ot_fs_mkdirs(dir);
  if (st) return st;
  header(head, sizeof head, s, key);
  snprintf(head + strlen(head), sizeof head - strlen(head), "# started\n" BUILD_LINE "%s\n", build);
  return ot_fs_write_atomic(started, head, strlen(head));
}
