/* Inside ot-tag: what its two input modes share.
 *
 *   tag_stage.c   setup (checkpoint, tokenizer, model), mode choice, summary
 *   tag_shards.c  input = an extracted split: one unit of work per shard
 *   tag_raw.c     input = a manifest of raw videos/images: one unit per
 *                 chunk of tag.chunk lines, decode -> model -> JSON, no shards
 *   tag_raw_rag.c raw input for a rag model: each pass's candidates
 *                 (encoder -> indexes -> fusion) computed on the fly
 *   tag_output.c  JSON lines of tags and errors, parts joined at the end
 *
 * Either mode: ranks take units dynamically (ot_workq), write each unit's
 * output as atomic part files under tag.out, then record the unit in the
 * ledger; rank 0 joins the parts in unit order at the end. */
#ifndef OT_TAGGER_H
#define OT_TAGGER_H

#include "bpe.h"
#include "ckpt.h"
#include "infer.h"
#include "ot_config.h"
#include "ot_fs.h"
#include "ot_ledger.h"
#include "ot_log.h"
#include "ot_model.h"
#include "ot_mpi.h"

#include <stddef.h>
#include <stdint.h>

typedef struct { int k; float p; } tag_scored;


typedef struct {
  const ot_config *cfg;
  char out[4200];
  ot_infer inf;          /* checkpoint, its metadata, tokenizer and model */
  double threshold;
  double ret_weight;     /* rag: retrieval's weight in the fused answer (ot_gen_fuse) */
  double lex_weight;     /* rag: the checkpoint's title lexicon's (ot_gen_fuse_title) */
  double abs_weight;     /* rag: the exponent of that lexicon's absence ratio (same) */
  int gen;               /* generative model (baseline, opg) */
  tag_scored *scratch;   /* [n_tags + 1]: closed-set ranking */
  ot_gen_item *g;        /* [tag.batch]: generated tags of one pass */
  ot_ledger *ledger;
  ot_workq *q;           /* units; its done counter drives rank-0 progress */
  ot_progress prog;
  /* filled by the mode's run */
  int64_t total;         /* manifest lines or items of the whole input */
  int64_t tagged, failed; /* this rank, this run */
  int64_t all_tagged, all_failed; /* rank 0 after the join: whole output */
  double t_work;         /* ot_now() when the units started */
  double cpu_work;       /* this process's CPU seconds then (tag_cpu_now) */
} tagger;

/* CPU seconds used by this process so far. */
double tag_cpu_now(void);

/* The decoding settings' part of a ledger fingerprint: "" for greedy
 * decoding of generation alone (so outputs written before beam search and
 * rag's fused answer existed still match), plus "|beamN" for N > 1 beams
 * and "|retW" for rag fused with retrieval at weight W > 0, "|lexW" with
 * the title lexicon at weight W > 0, "|absA" with its absence ratio at
 * exponent A > 0. Static storage. */
const char *tag_decode_mark(const tagger *t);

/* Open the ledger of n_units units under t->out with `fingerprint` (rank 0
 * creates it first; with units left, it removes the tags.jsonl and
 * errors.jsonl of an earlier run). Collective. */
int tag_open_ledger(tagger *t, uint64_t fingerprint, int64_t n_units);

/* Run the model on `batch` (frames and titles set; no targets, tags or, for
 * non-rag models, candidates) and append one line per item, ids[i] naming
 * item i, to out; titles[i] is its title as text (the title lexicon's). */
int tag_emit_batch(tagger *t, const ot_batch *batch, const char *const *ids,
                   const char *const *titles, ot_lines *out);

/* One error record line (ot_manifest_error_record: id/path NULL when unknown)
 * appended to out. */
void tag_error_line(ot_lines *out, const char *id, const char *path, const char *reason,
                    int64_t line);
/* <dir>/<prefix>-NNNNNN.jsonl */
void tag_part_path(char *buf, size_t cap, const char *dir, const char *prefix, int64_t unit);
/* Rank 0: concatenate the parts <dir>/<prefix>-NNNNNN.jsonl of units
 * 0..n_units-1 in order into <dir>/<dest>, atomically, streaming (memory:
 * one part). Parts that do not exist are skipped when `optional`, else
 * OT_EIO. */
int tag_join_parts(const char *dir, const char *prefix, int64_t n_units, const char *dest,
                   int optional);

/* Raw-manifest rag (tag_raw_rag.c): the retrieved candidates of a pass, as
 * ot-embed + ot-retrieve would have written them for the same items. */
typedef struct tag_rag_input tag_rag_input;
/* The encoder embed.ckpt (set: ot-tag's setup requires it), the
 * indexes of index.dir, the n-gram IDF when a source queries it, buffers for
 * passes of up to max_items items. Caller owns *out (tag_rag_input_close),
 * also on error. */
int tag_rag_input_open(tag_rag_input **out, const tagger *t, int max_items);
void tag_rag_input_close(tag_rag_input *r); /* accepts NULL */
/* What shapes the candidates, for the ledger fingerprint (owned by r). */
const char *tag_rag_input_describe(const tag_rag_input *r);
/* The encoder checkpoint's path (owned by r). */
const char *tag_rag_input_encoder(const tag_rag_input *r);
/* Item i of the pass being gathered: its title (NULL = ""). */
void tag_rag_input_title(tag_rag_input *r, int i, const char *title);
/* The pass's n items gathered (frames [n,T,H,W,3], ids[n], titles given):
 * embed, retrieve and point batch->cand_* at their candidates (valid until
 * the next fill; tag texts until close). */
int tag_rag_input_fill(tag_rag_input *r, int n, const uint8_t *frames, const char *const *ids,
                       ot_batch *batch);

/* The two modes: collective; they set t->total, tagged, failed and, on rank
 * 0, all_tagged / all_failed. */
int tag_shards_run(tagger *t);
int tag_raw_run(tagger *t);
/* OT_EINVAL when the model of `inf` (named `what` in the message) reads
 * precomputed per-frame features, which raw media cannot give. */
int tag_raw_check_model(const ot_infer *inf, const char *what);

#endif
