/* Run configuration: YAML files (libyaml) checked against a typed schema,
 * with defaults and `--set dotted.key=value` overrides.
 *
 * One config describes a whole run (data, extract, train, ...); each program
 * reads the sections it needs. Unknown keys, wrong types and values out of
 * range are errors naming the file, line and key. Relative paths in a config
 * are relative to the working directory the program is started from. */
#ifndef OT_CONFIG_H
#define OT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef enum { OT_RESIZE_MODE_CROP = 0, OT_RESIZE_MODE_LETTERBOX = 1 } ot_cfg_resize;
/* Order matches the "model.type" choices in the schema. */
typedef enum {
  OT_MODEL_BIN = 0, OT_MODEL_ASL = 1, OT_MODEL_BASELINE = 2, OT_MODEL_OPG = 3, OT_MODEL_RAG = 4,
  OT_MODEL_JUDGE = 5
} ot_cfg_model;
typedef enum { OT_ORDER_FREQUENCY = 0, OT_ORDER_GIVEN = 1 } ot_cfg_order;
typedef enum { OT_VISUAL_PATCHES = 0, OT_VISUAL_FEATURES = 1 } ot_cfg_visual;
typedef enum { OT_NORM_MINMAX = 0, OT_NORM_ZSCORE = 1, OT_NORM_SOFTMAX = 2, OT_NORM_RANK = 3 } ot_cfg_norm;

typedef struct {
  struct {
    char *name;   /* dataset name, used in reports */
    char *dir;    /* dataset root: <dir>/<split>/ holds that split's shards */
    char *train;  /* manifests (JSON Lines) per split; "" = none */
    char *val;
    char *test;
    char *root;   /* base folder for relative item paths; "" = the manifest's folder */
  } data;
  struct {
    int frames;       /* T */
    int height, width;
    int resize;       /* ot_cfg_resize */
    int shard_items;  /* manifest lines per shard (the unit of work) */
    int threads;      /* decoder threads per rank */
    int deflate;      /* HDF5 deflate level for frames, 0-9 */
    int store_frames; /* 0: no decoding, features-only shards (H = W = 0) */
    char *features;   /* HDF5 file of precomputed per-frame features by item id; "" = none */
    char *splits;     /* comma-separated subset of train,val,test to process */
  } extract;
  struct {
    int type;          /* ot_cfg_model */
    int dim;           /* width C of every transformer */
    int heads;
    int mlp_ratio;
    int visual;        /* ot_cfg_visual: the visual tokens' input */
    int patch;         /* P: square patches of P x P pixels */
    int vis_layers;    /* visual encoder blocks */
    int txt_layers;    /* title encoder blocks */
    int fuse_layers;   /* cross-modal fusion blocks */
    int title_len;     /* max title tokens (longer titles are cut) */
    int title_ngram;   /* hashed character n-gram vector of the title added to its tokens (0: off) */
    int lexicon;       /* rag: longest title piece of the title lexicon (0: off) */
    int vocab;         /* BPE vocabulary size learned from training texts */
    double dropout;
    int min_tag_count; /* closed-set heads: tags seen at least this often in train */
    double asl_gamma_pos, asl_gamma_neg, asl_clip;
    /* generative models (baseline, opg) */
    int prompts;       /* opg: order prompts K */
    int rag_m;         /* rag: retrieved candidate tags the decoder reads per item */
    int title_slots;   /* generative: the title's words as memory slots */
    int prompt_layers; /* opg: blocks of the order prompt encoder */
    int dec_layers;    /* tag decoder blocks */
    int tag_len;       /* max BPE tokens per tag (longer tags are cut) */
    int seq_len;       /* baseline: max tokens of the whole tag-list sequence */
    int baseline_order; /* ot_cfg_order: baseline's tag order in its sequence */
    double copy_aug;    /* generative training: copy augmentation probability */
    double tau;        /* opg: InfoNCE temperature */
    double w_match, w_has, w_gen; /* opg loss weights (baseline uses w_gen) */
    double match_has;  /* opg: weight of the has-tag probability in the matching cost */
    double match_gen;  /* opg: weight of the decoder's first-token log-likelihood in it */
    double judge_tau;  /* judge: temperature of its image-tag InfoNCE */
  } model;
  struct {
    char *dir;         /* checkpoints, tokenizer, logs */
    int batch;         /* global batch (split across ranks) */
    int steps;         /* optimizer steps */
    double lr, min_lr, weight_decay, grad_clip;
    int warmup;        /* linear warmup steps, then cosine to min_lr */
    int seed;
    int ckpt_every;    /* steps between checkpoints (and on SIGTERM/SIGUSR1) */
    int eval_every;    /* steps between validation passes */
    int threads;       /* OpenBLAS threads per rank */
    int log_every;     /* steps between rank-0 progress lines */
    int micro_batch;   /* items per forward pass on one rank (bounds activation memory) */
    int keep_ckpt;     /* newest ckpt-<step>.h5 files kept in train.dir (0: all) */
    int shift_aug;     /* training frames moved by up to this many pixels (0: off) */
    double ema;        /* decay of the weights' moving average, used for inference (0: off) */
    char *init;        /* checkpoint whose init_params tensors start a new run ("" = none) */
    char *init_params; /* comma-separated parameter-name prefixes copied from init */
  } train;
  struct {
    char *pred;        /* predictions to score (JSON Lines) */
    char *split;       /* split of data.dir holding the ground truth */
    int common_min;    /* a shared tag is common if on >= this many training items */
    char *name;        /* report row ("" = model.type) */
    char *model;       /* the model this row is a run of (report's seed means; "" = none) */
    char *out;         /* report path prefix: <out>.json, <out>.md */
    int append;        /* add/replace this row in an existing report */
    char *taggain_embeddings; /* HDF5 of image/text(/div) vectors for Tag Gain; "" = off */
    double tau_rel;    /* Tag Gain: keep a tag if cos(image, tag) > tau_rel */
    double tau_div;    /* Tag Gain: ... and cos(tag, every kept tag) < tau_div */
    char *judge;       /* judge checkpoint (final.h5 of a model.type=judge run) for Tag Gain; "" = off */
    double judge_gt_pass; /* judge: share of val (item, ground-truth tag) pairs with sim_rel > tau_rel */
    int examples;         /* qualitative examples in the report (items) */
    int bootstrap;        /* rounds of the paired bootstrap of F1 differences (0: none) */
    char *judge_vectors;  /* judge: write its image and tag vectors here (HDF5); "" = no */
  } eval;
  struct {
    char *ckpt;        /* checkpoint to tag with; "" = the newest in train.dir */
    char *split;       /* split of data.dir to tag */
    char *out;         /* output folder; "" = <train.dir>/tags-<split> */
    int batch;         /* items per forward pass */
    double threshold;  /* closed-set decision threshold; < 0: the one tuned on val */
    double retrieval_weight; /* rag: retrieval's weight in the fused answer; < 0: the one tuned on val */
    double lexicon_weight;   /* rag: the title lexicon's weight; < 0: the one tuned on val */
    double absence_weight;   /* rag: the exponent of its absence ratio; < 0: tuned on val */
    int top_k;         /* at most this many tags per item */
    int kv_cache;      /* generative decoding with the decoder's KV cache (0: recompute prefixes) */
    int beam;          /* generative decoding: beam width (1: greedy) */
    char *manifest;    /* raw input: manifest of videos/images decoded on the fly; "" = tag.split's shards */
    int chunk;         /* raw input: manifest lines per unit of work (one output part each) */
  } tag;
  struct {
    char *ckpt;        /* encoder checkpoint; "" = the newest in train.dir */
    char *dir;         /* output root: <dir>/<split>/emb-NNNNNN.h5; "" = <train.dir>/embed */
    char *splits;      /* comma-separated splits of data.dir to embed */
    int batch;         /* items per forward pass */
    int ngram_dim;     /* hashed character n-gram title vector ("ngram"); 0 = none */
  } embed;
  struct {
    char *dir;         /* <dir>/<source>/: FAISS file(s), rows table, meta; "" = <train.dir>/index */
    char *sources;     /* "name=query:key,...": query and key vector names of each source */
    char *factory;     /* FAISS index factory string (inner product) */
    int train_sample;  /* vectors sampled to train the coarse quantizer / PQ */
    int sharded;       /* keep one index per rank (searched and merged) instead of merging */
    int nprobe;        /* IVF cells visited per query */
  } index;
  struct {
    char *dir;         /* <dir>/<split>/cand-NNNNNN.h5 (+ tags.jsonl); "" = <train.dir>/retrieve */
    char *splits;      /* comma-separated splits to retrieve candidates for */
    int k;             /* neighbours per source */
    int top_m;         /* candidate tags kept per item */
    int norm;          /* ot_cfg_norm: per-source score normalisation */
    double temperature; /* softmax normalisation temperature */
    char *weights;     /* "name=w,..." per-source weights; "" = all 1 */
    double consensus;  /* bonus per extra source that proposed a tag */
  } retrieve;
  char **origin_;     /* internal: where each schema field's value came from */
} ot_config;

typedef enum { OT_CFG_INT, OT_CFG_FLOAT, OT_CFG_BOOL, OT_CFG_STR, OT_CFG_ENUM } ot_cfg_type;

typedef struct {
  const char *key;      /* dotted path, e.g. "extract.frames" */
  ot_cfg_type type;
  size_t offset;        /* of the value in ot_config */
  const char *def;      /* default, as YAML text */
  const char *choices;  /* OT_CFG_ENUM: "crop|letterbox" (index = stored value) */
  double min, max;      /* OT_CFG_INT/FLOAT: allowed range (inclusive) */
  const char *help;
} ot_cfg_field;

extern const ot_cfg_field ot_cfg_schema[];
extern const size_t ot_cfg_schema_len;

/* Fill `cfg` with defaults, then apply `path` (may be NULL), then each of
 * `sets` ("a.b=value") in order. On error returns OT_EINVAL with a message
 * naming the file, line and key (or the --set argument). The strings in cfg
 * are owned by it: release with ot_config_free (also on error). */
int ot_config_load(ot_config *cfg, const char *path, const char *const *sets, int n_sets);
/* The same with the YAML text `yaml` (borrowed) in place of a file, e.g. the
 * config stored in a checkpoint; `name` stands for the file in messages
 * ("NAME:LINE"). Ownership as for ot_config_load. */
int ot_config_load_string(ot_config *cfg, const char *yaml, const char *name, const char *const *sets,
                          int n_sets);
void ot_config_free(ot_config *cfg);
/* Where a key's value came from: "FILE:LINE", "--set", or "default". */
const char *ot_config_origin(const ot_config *cfg, const char *key);
/* OT_EINVAL with "KEY must be set (in the config or with --set KEY=...)" if
 * the string key is empty. */
int ot_config_require(const ot_config *cfg, const char *key);
/* The name of an enum key's value, e.g. ("model.type", OT_MODEL_OPG) ->
 * "opg", as *len bytes of the schema's static text (print with "%.*s"). */
const char *ot_config_enum_name(const char *key, int value, int *len);
/* The folder of a stage's output, e.g. key "retrieve.dir": its value when
 * set, else <train.dir>/<default_sub>. OT_EINVAL naming both keys when both
 * are empty, or when the path does not fit in cap bytes. */
int ot_config_dir(const ot_config *cfg, const char *key, const char *default_sub, char *out,
                  size_t cap);
/* The effective config as YAML that ot_config_load reads back to the same
 * values. Returns a malloc'd string the caller frees. */
char *ot_config_dump(const ot_config *cfg);
/* The same, only the keys whose value differs from the schema's default —
 * what a user chose, unchanged when a new version adds keys — and only in
 * `sections` (space separated section names or single keys, "data
 * extract retrieve.dir"; NULL: all). Malloc'd. */
char *ot_config_dump_changed(const ot_config *cfg, const char *sections);
/* A key's value as the loader reads it ("16", "true", "opg", ...) into buf;
 * the key must be in the schema. */
void ot_config_value(const ot_config *cfg, const char *key, char *buf, size_t cap);
/* FNV-1a 64 over "key=value\n" of the given keys (NULL-terminated list):
 * detects a resumed job started with settings that change its output. */
uint64_t ot_config_fingerprint(const ot_config *cfg, const char *const *keys);
/* Print the schema (keys, types, defaults, help) for --help. */
void ot_config_print_schema(const char *section_prefix);

#endif
