/* The typed schema of every config key: type, default, range, help.
 * Adding a key = a field in ot_config (ot_config.h) + one line here. */
#include "ot_config.h"

#include <stddef.h>

#define F(k, t, field, def, choices, lo, hi, help) \
  {k, t, offsetof(ot_config, field), def, choices, lo, hi, help}

const ot_cfg_field ot_cfg_schema[] = {
  F("data.name", OT_CFG_STR, data.name, "dataset", NULL, 0, 0, "dataset name used in reports"),
  F("data.dir", OT_CFG_STR, data.dir, "", NULL, 0, 0,
    "dataset root; <dir>/<split>/ holds the split's shards, index and errors"),
  F("data.train", OT_CFG_STR, data.train, "", NULL, 0, 0, "training manifest (JSON Lines)"),
  F("data.val", OT_CFG_STR, data.val, "", NULL, 0, 0, "validation manifest (JSON Lines)"),
  F("data.test", OT_CFG_STR, data.test, "", NULL, 0, 0, "test manifest (JSON Lines)"),
  F("data.root", OT_CFG_STR, data.root, "", NULL, 0, 0,
    "folder that relative item paths start from (default: the manifest's folder)"),

  F("extract.frames", OT_CFG_INT, extract.frames, "8", NULL, 1, 256,
    "frames T sampled uniformly per video; stills repeat their frame T times"),
  F("extract.height", OT_CFG_INT, extract.height, "64", NULL, 8, 4096, "frame height H"),
  F("extract.width", OT_CFG_INT, extract.width, "64", NULL, 8, 4096, "frame width W"),
  F("extract.resize", OT_CFG_ENUM, extract.resize, "crop", "crop|letterbox", 0, 0,
    "center-crop to the output aspect, or letterbox with black bars"),
  F("extract.shard_items", OT_CFG_INT, extract.shard_items, "1024", NULL, 1, 1000000,
    "manifest lines per shard file (the unit of work handed to ranks)"),
  F("extract.threads", OT_CFG_INT, extract.threads, "1", NULL, 1, 64,
    "decoder threads per rank (ranks x threads should not exceed cores)"),
  F("extract.deflate", OT_CFG_INT, extract.deflate, "4", NULL, 0, 9, "HDF5 deflate level of frames"),
  F("extract.splits", OT_CFG_STR, extract.splits, "train,val,test", NULL, 0, 0,
    "which splits to extract (those with a manifest set)"),

  F("model.type", OT_CFG_ENUM, model.type, "bin", "bin|asl", 0, 0,
    "bin: BCE over the training tag vocabulary; asl: same head, asymmetric loss"),
  F("model.dim", OT_CFG_INT, model.dim, "128", NULL, 8, 4096, "transformer width"),
  F("model.heads", OT_CFG_INT, model.heads, "4", NULL, 1, 64, "attention heads (divide dim)"),
  F("model.mlp_ratio", OT_CFG_INT, model.mlp_ratio, "4", NULL, 1, 16, "MLP hidden = mlp_ratio x dim"),
  F("model.patch", OT_CFG_INT, model.patch, "8", NULL, 1, 256, "patch size P (divides H and W)"),
  F("model.vis_layers", OT_CFG_INT, model.vis_layers, "4", NULL, 0, 64, "visual encoder blocks"),
  F("model.txt_layers", OT_CFG_INT, model.txt_layers, "2", NULL, 0, 64, "title encoder blocks"),
  F("model.fuse_layers", OT_CFG_INT, model.fuse_layers, "2", NULL, 0, 64,
    "cross-modal fusion blocks"),
  F("model.title_len", OT_CFG_INT, model.title_len, "16", NULL, 1, 1024, "max title tokens"),
  F("model.vocab", OT_CFG_INT, model.vocab, "2048", NULL, 261, 1 << 20,
    "BPE vocabulary size learned from the training titles and tags"),
  F("model.dropout", OT_CFG_FLOAT, model.dropout, "0.1", NULL, 0, 0.9, "dropout probability"),
  F("model.min_tag_count", OT_CFG_INT, model.min_tag_count, "1", NULL, 1, 1000000,
    "closed-set heads: a tag enters the vocabulary if seen this often in train"),
  F("model.asl_gamma_pos", OT_CFG_FLOAT, model.asl_gamma_pos, "0", NULL, 0, 10, "ASL gamma+"),
  F("model.asl_gamma_neg", OT_CFG_FLOAT, model.asl_gamma_neg, "4", NULL, 0, 10, "ASL gamma-"),
  F("model.asl_clip", OT_CFG_FLOAT, model.asl_clip, "0.05", NULL, 0, 0.5,
    "ASL probability margin m"),

  F("train.dir", OT_CFG_STR, train.dir, "", NULL, 0, 0, "checkpoints, tokenizer and logs"),
  F("train.batch", OT_CFG_INT, train.batch, "64", NULL, 1, 1 << 20,
    "global batch, split across ranks"),
  F("train.steps", OT_CFG_INT, train.steps, "2000", NULL, 1, 1 << 30, "optimizer steps"),
  F("train.lr", OT_CFG_FLOAT, train.lr, "1e-3", NULL, 0, 10, "peak learning rate"),
  F("train.min_lr", OT_CFG_FLOAT, train.min_lr, "1e-5", NULL, 0, 10, "final learning rate"),
  F("train.warmup", OT_CFG_INT, train.warmup, "100", NULL, 0, 1 << 30, "linear warmup steps"),
  F("train.weight_decay", OT_CFG_FLOAT, train.weight_decay, "0.05", NULL, 0, 10,
    "AdamW decoupled weight decay (matrices only)"),
  F("train.grad_clip", OT_CFG_FLOAT, train.grad_clip, "1.0", NULL, 0, 1e9,
    "global gradient-norm clip (0: off)"),
  F("train.seed", OT_CFG_INT, train.seed, "1", NULL, 0, 2147483647, "initialisation/shuffle seed"),
  F("train.ckpt_every", OT_CFG_INT, train.ckpt_every, "500", NULL, 1, 1 << 30,
    "steps between checkpoints (also written on SIGTERM/SIGUSR1)"),
  F("train.eval_every", OT_CFG_INT, train.eval_every, "500", NULL, 1, 1 << 30,
    "steps between validation passes"),
  F("train.threads", OT_CFG_INT, train.threads, "1", NULL, 1, 256,
    "OpenBLAS threads per rank (ranks x threads <= cores)"),
};
const size_t ot_cfg_schema_len = sizeof ot_cfg_schema / sizeof ot_cfg_schema[0];
