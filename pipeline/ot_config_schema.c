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
};
const size_t ot_cfg_schema_len = sizeof ot_cfg_schema / sizeof ot_cfg_schema[0];
