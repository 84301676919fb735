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
    "folder that relative item paths start from; empty: the manifest's folder"),

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
  F("extract.features", OT_CFG_STR, extract.features, "", NULL, 0, 0,
    "HDF5 file of precomputed per-frame features (e.g. CLIP vectors) stored with each item: "
    "/id (UTF-8 strings [N]) and /features (float [N,T,D], T = extract.frames); an item without "
    "a row is an error record; empty: none"),
  F("extract.store_frames", OT_CFG_BOOL, extract.store_frames, "true", NULL, 0, 0,
    "decode the media and store frames; false (needs extract.features): no media is decoded, the "
    "shards hold the features only (for model.visual features)"),
  F("extract.splits", OT_CFG_STR, extract.splits, "train,val,test", NULL, 0, 0,
    "which splits to extract (those with a manifest set)"),

  F("model.type", OT_CFG_ENUM, model.type, "bin", "bin|asl|baseline|opg|rag|judge", 0, 0,
    "bin: BCE over the training tag vocabulary; asl: same head, asymmetric loss; "
    "baseline: one decoder writes the tag list as one sequence; opg: order prompts + tag decoder; "
    "rag: opg reading retrieved candidate tags (ot-retrieve's, from retrieve.dir); "
    "judge: CLIP-style image-tag dual encoder for ot-eval's Tag Gain (eval.judge)"),
  F("model.rag_m", OT_CFG_INT, model.rag_m, "20", NULL, 1, 4096,
    "rag: retrieved candidate tags per item given to the prompts and the decoder (best first)"),
  F("model.title_slots", OT_CFG_BOOL, model.title_slots, "true", NULL, 0, 0,
    "generative models: the title's words, case-folded and tokenized as tags are, as extra "
    "memory slots the prompts and the decoder read (the way to copy a title word as a tag)"),
  F("model.dim", OT_CFG_INT, model.dim, "128", NULL, 8, 4096, "transformer width"),
  F("model.heads", OT_CFG_INT, model.heads, "4", NULL, 1, 64, "attention heads (divide dim)"),
  F("model.mlp_ratio", OT_CFG_INT, model.mlp_ratio, "4", NULL, 1, 16, "MLP hidden = mlp_ratio x dim"),
  F("model.visual", OT_CFG_ENUM, model.visual, "patches", "patches|features", 0, 0,
    "visual tokens: patches of the frames, or the shards' precomputed per-frame features "
    "(extract.features) through a linear projection, one token per frame"),
  F("model.patch", OT_CFG_INT, model.patch, "8", NULL, 1, 256, "patch size P (divides H and W)"),
  F("model.vis_layers", OT_CFG_INT, model.vis_layers, "4", NULL, 0, 64, "visual encoder blocks"),
  F("model.txt_layers", OT_CFG_INT, model.txt_layers, "2", NULL, 0, 64, "title encoder blocks"),
  F("model.fuse_layers", OT_CFG_INT, model.fuse_layers, "2", NULL, 0, 64,
    "cross-modal fusion blocks"),
  F("model.title_ngram", OT_CFG_INT, model.title_ngram, "0", NULL, 0, 1 << 20,
    "width of the title's hashed character 1-3-gram count vector (L2-normalised), projected to "
    "model.dim and added to every title token's embedding (0: off)"),
  F("model.lexicon", OT_CFG_INT, model.lexicon, "0", NULL, 0, 8,
    "rag: join the pieces of the item's own title (up to N words, or CJK characters) to the "
    "answer, scored by how often such a piece of a training title was a tag, at a weight tuned "
    "on val (0: off)"),
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
  F("model.prompts", OT_CFG_INT, model.prompts, "16", NULL, 1, 1024,
    "opg: order prompts K (about 2x the typical tag count; tags beyond K are not learned)"),
  F("model.prompt_layers", OT_CFG_INT, model.prompt_layers, "2", NULL, 1, 64,
    "opg: order prompt encoder blocks (self-attention + cross-attention to the fused tokens)"),
  F("model.dec_layers", OT_CFG_INT, model.dec_layers, "2", NULL, 1, 64,
    "tag decoder blocks (causal self-attention + cross-attention)"),
  F("model.tag_len", OT_CFG_INT, model.tag_len, "12", NULL, 1, 1024,
    "max BPE tokens per tag (longer tags are cut; opg: at most model.title_len)"),
  F("model.seq_len", OT_CFG_INT, model.seq_len, "64", NULL, 2, 1 << 16,
    "baseline: max tokens of the tag-list sequence (tags that do not fit are dropped)"),
  F("model.copy_aug", OT_CFG_FLOAT, model.copy_aug, "0", NULL, 0, 1,
    "generative training: probability that a tag found in the item's title is replaced, in the "
    "title words and the tag, by the same random word, so the decoder learns to copy what it "
    "cannot know (0: off)"),
  F("model.baseline_order", OT_CFG_ENUM, model.baseline_order, "frequency", "frequency|given", 0, 0,
    "baseline: the fixed order of an item's tags in its sequence: most frequent in training first "
    "(ties: as given), or as the item lists them"),
  F("model.tau", OT_CFG_FLOAT, model.tau, "0.1", NULL, 1e-3, 10, "opg: InfoNCE temperature"),
  F("model.judge_tau", OT_CFG_FLOAT, model.judge_tau, "0.07", NULL, 1e-3, 10,
    "judge: temperature of the image-tag InfoNCE (both directions)"),
  F("model.w_match", OT_CFG_FLOAT, model.w_match, "1", NULL, 0, 1000,
    "opg: weight of the prompt-tag InfoNCE loss"),
  F("model.w_has", OT_CFG_FLOAT, model.w_has, "1", NULL, 0, 1000,
    "opg: weight of the has-tag BCE loss"),
  F("model.w_gen", OT_CFG_FLOAT, model.w_gen, "1", NULL, 0, 1000,
    "weight of the decoder's token cross-entropy"),
  F("model.match_has", OT_CFG_FLOAT, model.match_has, "0", NULL, 0, 100,
    "opg: matching cost = -cos(prompt, tag) - match_has x has-tag probability of the prompt "
    "(the class term of DETR's matching: tags go to prompts that already say they hold one)"),
  F("model.match_gen", OT_CFG_FLOAT, model.match_gen, "0", NULL, 0, 100,
    "opg: adds - match_gen x log p(the tag's first token | the prompt) to the matching cost: "
    "a tag goes to a prompt the decoder would already start writing it from"),

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
  F("train.log_every", OT_CFG_INT, train.log_every, "10", NULL, 1, 1 << 30,
    "steps between rank-0 progress lines (loss, lr, samples/s, GFLOP/s, peak RSS)"),
  F("train.micro_batch", OT_CFG_INT, train.micro_batch, "16", NULL, 1, 1 << 20,
    "items per forward pass on one rank (bounds activation memory; 1 when model.dropout > 0)"),
  F("train.keep_ckpt", OT_CFG_INT, train.keep_ckpt, "3", NULL, 0, 1 << 30,
    "newest ckpt-<step>.h5 files kept in train.dir (0: keep all)"),
  F("train.shift_aug", OT_CFG_INT, train.shift_aug, "0", NULL, 0, 64,
    "training only: each item's frames are moved by a random offset of up to this many pixels "
    "in x and in y, the uncovered border repeating the edge pixels (0: off); validation, "
    "embedding and tagging see the frames as they are"),
  F("train.ema", OT_CFG_FLOAT, train.ema, "0", NULL, 0, 0.99999,
    "decay of an exponential moving average of the weights, kept beside them, validated, "
    "saved in checkpoints and read by inference in their place (0: off)"),
  F("train.init", OT_CFG_STR, train.init, "", NULL, 0, 0,
    "a new run starts from this checkpoint's train.init_params tensors (its averaged weights "
    "when it has them) instead of random ones; same tokenizer required (\"\": off; a resumed "
    "run reads its own checkpoint)"),
  F("train.init_params", OT_CFG_STR, train.init_params, "vis.,txt.,fuse.", NULL, 0, 0,
    "comma-separated name prefixes of the parameters train.init copies (default: the hybrid "
    "encoder: visual, title and fusion blocks)"),

  F("eval.pred", OT_CFG_STR, eval.pred, "", NULL, 0, 0,
    "predictions to score, JSON Lines {\"id\", \"tags\": [{\"tag\", \"score\", \"source\"}...]}"),
  F("eval.split", OT_CFG_STR, eval.split, "test", NULL, 0, 0,
    "split of data.dir holding the ground truth (train, val or test)"),
  F("eval.common_min", OT_CFG_INT, eval.common_min, "20", NULL, 1, 1 << 30,
    "a tag shared by train and the eval split is common if on >= this many training items, else rare"),
  F("eval.name", OT_CFG_STR, eval.name, "", NULL, 0, 0, "report row name; empty: the model.type name"),
  F("eval.model", OT_CFG_STR, eval.model, "", NULL, 0, 0,
    "the model this row is a run of (e.g. one train.seed of several): the report averages the rows "
    "of each model and compares the models' mean F1 (seed means); empty: none"),
  F("eval.out", OT_CFG_STR, eval.out, "", NULL, 0, 0,
    "report path prefix: writes <out>.json and <out>.md"),
  F("eval.append", OT_CFG_BOOL, eval.append, "false", NULL, 0, 0,
    "keep the other rows of an existing report at eval.out; this run replaces the row of the same name"),
  F("eval.taggain_embeddings", OT_CFG_STR, eval.taggain_embeddings, "", NULL, 0, 0,
    "Tag Gain from external embeddings (HDF5: image/id + image/vec [N,D], text/tag + text/vec [M,D], "
    "optional div/tag + div/vec); empty: no Tag Gain"),
  F("eval.tau_rel", OT_CFG_FLOAT, eval.tau_rel, "0.3", NULL, -1, 1,
    "Tag Gain: a predicted tag is relevant if cos(image vector, tag text vector) > tau_rel"),
  F("eval.tau_div", OT_CFG_FLOAT, eval.tau_div, "0.8", NULL, -1, 1,
    "Tag Gain: a relevant tag is kept if its cos to every tag kept before it is < tau_div"),

  F("eval.judge", OT_CFG_STR, eval.judge, "", NULL, 0, 0,
    "Tag Gain from a judge checkpoint (final.h5 of a model.type=judge run): sim_rel = cos(image, tag), "
    "sim_div = cos(tag, tag), tau_rel and tau_div calibrated on val (cached in <run>/calibration.json); "
    "excludes eval.taggain_embeddings"),
  F("eval.judge_gt_pass", OT_CFG_FLOAT, eval.judge_gt_pass, "0.9", NULL, 0.01, 0.99,
    "judge: tau_rel is set so that this share of val (item, ground-truth tag) pairs has sim_rel > tau_rel"),
  F("eval.examples", OT_CFG_INT, eval.examples, "6", NULL, 0, 1000,
    "qualitative examples in the report: this many items (the same for every row), each predicted "
    "tag marked in the ground truth, known, novel or filtered out by Tag Gain"),
  F("eval.bootstrap", OT_CFG_INT, eval.bootstrap, "1000", NULL, 0, 1000000,
    "rounds of the paired bootstrap over the split's groups (the dataset's \"group\" field) that "
    "gives each pair of report rows a 95% interval of their F1 difference; 0: none"),
  F("eval.judge_vectors", OT_CFG_STR, eval.judge_vectors, "", NULL, 0, 0,
    "judge: also write its vectors of the eval split's items and of every tag to this HDF5 file, in "
    "eval.taggain_embeddings' layout (image/id, image/vec, text/tag, text/vec); empty: none"),

  F("tag.ckpt", OT_CFG_STR, tag.ckpt, "", NULL, 0, 0,
    "checkpoint to tag with (e.g. <train.dir>/best.h5); empty: the newest complete one in train.dir"),
  F("tag.split", OT_CFG_STR, tag.split, "test", NULL, 0, 0, "split of data.dir to tag"),
  F("tag.out", OT_CFG_STR, tag.out, "", NULL, 0, 0,
    "output folder (tags.jsonl, per-shard parts, ledger); empty: <train.dir>/tags-<split>"),
  F("tag.batch", OT_CFG_INT, tag.batch, "32", NULL, 1, 1 << 16, "items per forward pass"),
  F("tag.threshold", OT_CFG_FLOAT, tag.threshold, "-1", NULL, -1, 1,
    "decision threshold on the tag score (probability); -1: the one tuned on val"),
  F("tag.retrieval_weight", OT_CFG_FLOAT, tag.retrieval_weight, "-1", NULL, -1, 1,
    "rag: weight w of retrieval in the answer, score = (1 - w) generated + w retrieved; "
    "-1: the one tuned on val with the threshold"),
  F("tag.lexicon_weight", OT_CFG_FLOAT, tag.lexicon_weight, "-1", NULL, -1, 2,
    "rag with model.lexicon: weight w of the title lexicon, score = max(answer, min(1, w lexicon)); "
    "-1: the one tuned on val with the threshold"),
  F("tag.absence_weight", OT_CFG_FLOAT, tag.absence_weight, "-1", NULL, -1, 10,
    "rag with model.lexicon: exponent a of the lexicon's absence ratio r (how much rarer a tag "
    "usually written in its item's title is when this title lacks it), answer = score x r^a; "
    "-1: the one tuned on val with the threshold"),
  F("tag.top_k", OT_CFG_INT, tag.top_k, "20", NULL, 1, 100000, "at most this many tags per item"),
  F("tag.beam", OT_CFG_INT, tag.beam, "1", NULL, 1, 64,
    "generative models: beam width of the tag decoding (1: greedy)"),
  F("tag.kv_cache", OT_CFG_BOOL, tag.kv_cache, "true", NULL, 0, 0,
    "generative models: decode with the decoder's key/value cache (false: recompute every prefix, "
    "the reference the cache is measured against)"),
  F("tag.manifest", OT_CFG_STR, tag.manifest, "", NULL, 0, 0,
    "raw input: a manifest (JSON Lines, ot-extract's format, tags optional) of videos/images that are "
    "decoded, encoded and tagged in one pass without writing shards (frames sampled as the "
    "checkpoint's training data; failed items go to <tag.out>/errors.jsonl); empty: tag the "
    "extracted split data.dir/<tag.split>"),
  F("tag.chunk", OT_CFG_INT, tag.chunk, "256", NULL, 1, 1 << 24,
    "raw input: manifest lines per unit of work (ranks take chunks dynamically; one output part and "
    "ledger record each; a killed job redoes at most the chunks in flight)"),

  F("embed.ckpt", OT_CFG_STR, embed.ckpt, "", NULL, 0, 0,
    "encoder checkpoint; empty: the newest complete one in train.dir"),
  F("embed.dir", OT_CFG_STR, embed.dir, "", NULL, 0, 0,
    "embeddings root, <dir>/<split>/emb-NNNNNN.h5; empty: <train.dir>/embed"),
  F("embed.splits", OT_CFG_STR, embed.splits, "train,val,test", NULL, 0, 0,
    "comma-separated splits of data.dir to embed"),
  F("embed.batch", OT_CFG_INT, embed.batch, "32", NULL, 1, 1 << 16, "items per forward pass"),
  F("embed.ngram_dim", OT_CFG_INT, embed.ngram_dim, "1024", NULL, 0, 1 << 20,
    "dimension of the hashed character n-gram title vector \"ngram\"; 0: none"),

  F("index.dir", OT_CFG_STR, index.dir, "", NULL, 0, 0,
    "indexes root, <dir>/<source>/; empty: <train.dir>/index"),
  F("index.sources", OT_CFG_STR, index.sources,
    "video=visual:visual,title=title:title,fused=fused:fused,ngram=ngram:ngram", NULL, 0, 0,
    "retrieval sources as name=query:key (embedding vector names)"),
  F("index.factory", OT_CFG_STR, index.factory, "Flat", NULL, 0, 0,
    "FAISS index factory string, inner-product metric (Flat, IVF4096,PQ64np, HNSW32, ...; PQ without np trains a polysemous code: far slower, unused by search)"),
  F("index.train_sample", OT_CFG_INT, index.train_sample, "100000", NULL, 1, 1 << 30,
    "vectors sampled from the training split to train the index"),
  F("index.sharded", OT_CFG_BOOL, index.sharded, "false", NULL, 0, 0,
    "keep one index per rank (all searched, top-k merged) instead of merging into one"),
  F("index.nprobe", OT_CFG_INT, index.nprobe, "16", NULL, 1, 1 << 20, "IVF cells visited per query"),

  F("retrieve.dir", OT_CFG_STR, retrieve.dir, "", NULL, 0, 0,
    "candidates root, <dir>/<split>/cand-NNNNNN.h5; empty: <train.dir>/retrieve"),
  F("retrieve.splits", OT_CFG_STR, retrieve.splits, "train,val,test", NULL, 0, 0,
    "comma-separated splits to retrieve candidates for"),
  F("retrieve.k", OT_CFG_INT, retrieve.k, "32", NULL, 1, 100000, "neighbours per source"),
  F("retrieve.top_m", OT_CFG_INT, retrieve.top_m, "20", NULL, 1, 100000, "candidate tags kept per item"),
  F("retrieve.norm", OT_CFG_ENUM, retrieve.norm, "softmax", "minmax|zscore|softmax|rank", 0, 0,
    "per-source normalisation of neighbour similarities"),
  F("retrieve.temperature", OT_CFG_FLOAT, retrieve.temperature, "0.05", NULL, 1e-6, 1e6,
    "temperature of the softmax normalisation"),
  F("retrieve.weights", OT_CFG_STR, retrieve.weights, "", NULL, 0, 0,
    "per-source weights as name=w,...; empty: every source 1"),
  F("retrieve.consensus", OT_CFG_FLOAT, retrieve.consensus, "0.1", NULL, 0, 1e6,
    "score bonus per additional source that proposed a tag"),
};
const size_t ot_cfg_schema_len = sizeof ot_cfg_schema / sizeof ot_cfg_schema[0];
