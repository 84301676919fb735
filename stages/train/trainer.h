/* ot-train's state and its two phases: setup (everything that can fail on
 * bad input, before the first step: exit 2) and the training loop. */
#ifndef OT_TRAINER_H
#define OT_TRAINER_H

#include "batcher.h"
#include "ot_cand.h"
#include "bpe.h"
#include "lexicon.h"
#include "order.h"
#include "ot_config.h"
#include "ot_dataset.h"
#include "ot_model.h"
#include "tagset.h"

#include <stdint.h>
#include <stdio.h>

typedef struct {
  const ot_config *cfg;
  int rank, size;
  ot_dataset *train, *val; /* val NULL when data.dir/val has no index or no items */
  int T, H, W, D;          /* frames, and the width of their features (0: none) */
  ot_bpe *bpe;
  char *bpe_text;          /* serialised tokenizer (checkpoints) */
  ot_tagset tags;
  ot_model *model;
  ot_params *params;
  ot_order *order;
  ot_batcher *batcher;     /* train and validation inputs (same buffers) */
  ot_batcher *val_batcher;
  ot_cand_reader *cands, *val_cands; /* rag: retrieved candidates of train and val */
  uint64_t cands_version;  /* rag: their version now (ot_cand_split_version) */
  uint64_t resumed_cands_version; /* rank 0: theirs in the checkpoint resumed from */
  int micro;               /* items per forward pass */
  int64_t step;            /* optimizer updates done */
  int64_t start_step;      /* step the run started (or resumed) at */
  double threshold, val_f1;/* from the last validation */
  double best_f1;          /* the highest val F1 so far (< 0: none), saved as OT_CKPT_BEST */
  int64_t best_step;
  double ret_weight;       /* rag: retrieval's weight in the fused answer, from it too */
  ot_lexicon lexicon;      /* rag with model.lexicon: the title lexicon (max_units 0: none) */
  double lex_weight;       /* its weight in the answer (ot_gen_fuse_title), from validation */
  double abs_weight;       /* the exponent of its absence ratio there, from validation */
  char *config_yaml;
  char resumed_from[4400]; /* checkpoint path, "" for a fresh run */
  FILE *metrics;           /* rank 0: train.dir/metrics.jsonl */
  int lock_fd;             /* rank 0: the flock on train.dir/.lock (-1: none) */
} ot_trainer;

/* Collective. Open the data, build or restore tokenizer, tags, model and
 * data position. On error every rank returns the same status and message.
 * *t is cleaned with ot_trainer_close whatever the outcome. */
int ot_trainer_setup(ot_trainer *t, const ot_config *cfg);
void ot_trainer_close(ot_trainer *t);

/* Route SIGUSR1, SIGTERM and SIGINT to a flag that ot_trainer_run reads at
 * step boundaries (call early: SIGUSR1 would otherwise kill the process). */
void ot_trainer_catch_signals(void);

/* Collective. Train up to train.steps, validating, checkpointing and
 * handling SIGTERM/SIGUSR1/SIGINT; writes final.h5. *stopped_by is the
 * signal that stopped the run (0: none): early, after a checkpoint, or one
 * caught after the last step (final.h5 then complete). */
int ot_trainer_run(ot_trainer *t, int *stopped_by);

/* Collective: broadcast a malloc'd string from rank 0 (*s is replaced on
 * the other ranks; NULL on rank 0 sends ""). */
void ot_trainer_bcast_str(char **s);

#endif
