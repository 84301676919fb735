/* Writes what mirror.py needs to rebuild the tagger in PyTorch and compare:
 *
 *   usage: test_model_mirror bin|asl OUT.h5
 *
 *   /            attributes: the model's sizes and loss settings
 *   /params/NAME every parameter (checkpoint naming), its shape
 *   /grads/NAME  the C model's gradient of the loss
 *   /batch/...   frames uint8 [B,T,H,W,3], title int32 [B,L], mask uint8
 *                [B,L], targets float [B,n_tags]
 *   /out/logits  [B,n_tags];  /out/loss  scalar
 *
 * Sizes are small but not square (W != H, Np != T, hidden != 4C) so that
 * a layout mix-up shows; titles have full, partial and no tokens. */
#include <hdf5.h>
#include <string.h>

#include "model_fixture.h"

static void attr_int(hid_t loc, const char *name, int v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_INT, &v);
  H5Aclose(a);
  H5Sclose(sp);
}

static void attr_double(hid_t loc, const char *name, double v) {
  hid_t sp = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(loc, name, H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
  H5Aclose(a);
  H5Sclose(sp);
}

static int write(hid_t loc, const char *name, hid_t mem_type, hid_t file_type, int ndim,
                 const int *shape, const void *data) {
  hsize_t dims[8];
  for (int i = 0; i < ndim; i++) dims[i] = (hsize_t)shape[i];
  hid_t sp = ndim ? H5Screate_simple(ndim, dims, NULL) : H5Screate(H5S_SCALAR);
  hid_t d = H5Dcreate2(loc, name, file_type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  herr_t e = d < 0 ? -1 : H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  if (d >= 0) H5Dclose(d);
  H5Sclose(sp);
  return e < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc != 3 || (strcmp(argv[1], "bin") && strcmp(argv[1], "asl"))) {
    fprintf(stderr, "usage: %s bin|asl OUT.h5\n", argv[0]);
    return 2;
  }
  char type[32];
  snprintf(type, sizeof type, "model.type=%s", argv[1]);
  const char *sets[] = {type, "model.dim=32", "model.heads=4", "model.mlp_ratio=2",
                        "model.patch=4", "model.vis_layers=2", "model.txt_layers=1",
                        "model.fuse_layers=2", "model.title_len=6", "model.dropout=0"};
  ot_config cfg;
  fixture_config(&cfg, sets, (int)(sizeof sets / sizeof *sets));
  ot_model_dims d = {.T = 2, .H = 8, .W = 12, .n_tags = 13, .vocab = 40, .max_batch = 4};
  const int B = 4, L = cfg.model.title_len;
  ot_model *m;
  if (ot_model_open(&m, &cfg, &d, 1)) {
    fprintf(stderr, "open: %s\n", ot_errmsg());
    return 1;
  }
  ot_model_init(m, 2024);
  ot_params *p = ot_model_params(m);
  float *W = ot_params_values(p);
  ot_rng r;
  ot_rng_seed(&r, 3);
  for (int i = 0; i < ot_params_count(p); i++) { /* off the structured init (LN 1, biases 0) */
    const ot_param_view *v = ot_params_view(p, i);
    for (size_t j = 0; j < v->numel; j++) W[v->offset + j] += 0.05f * ot_rng_normal(&r);
  }
  const int lens[] = {6, 3, 0, 1};
  fixture_batch fb;
  fixture_batch_make(&fb, &d, L, B, lens, 4, 11);

  float loss;
  ot_params_zero_grads(p);
  if (ot_model_forward(m, &fb.b, 1, 0, &loss)) {
    fprintf(stderr, "forward: %s\n", ot_errmsg());
    return 1;
  }
  ot_model_backward(m);

  hid_t f = H5Fcreate(argv[2], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) {
    fprintf(stderr, "cannot create %s\n", argv[2]);
    return 1;
  }
  attr_int(f, "asl", cfg.model.type == OT_MODEL_ASL);
  attr_int(f, "dim", cfg.model.dim);
  attr_int(f, "heads", cfg.model.heads);
  attr_int(f, "hidden", cfg.model.mlp_ratio * cfg.model.dim);
  attr_int(f, "patch", cfg.model.patch);
  attr_int(f, "vis_layers", cfg.model.vis_layers);
  attr_int(f, "txt_layers", cfg.model.txt_layers);
  attr_int(f, "fuse_layers", cfg.model.fuse_layers);
  attr_double(f, "asl_gamma_pos", cfg.model.asl_gamma_pos);
  attr_double(f, "asl_gamma_neg", cfg.model.asl_gamma_neg);
  attr_double(f, "asl_clip", cfg.model.asl_clip);
  attr_double(f, "loss_scale", fb.b.loss_scale);

  int rc = 0;
  hid_t gp = H5Gcreate2(f, "params", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  hid_t gg = H5Gcreate2(f, "grads", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const float *G = ot_params_grads(p);
  for (int i = 0; i < ot_params_count(p); i++) {
    const ot_param_view *v = ot_params_view(p, i);
    rc |= write(gp, v->name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, v->ndim, v->shape, W + v->offset);
    rc |= write(gg, v->name, H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, v->ndim, v->shape, G + v->offset);
  }
  H5Gclose(gp);
  H5Gclose(gg);
  hid_t gb = H5Gcreate2(f, "batch", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  const int fshape[] = {B, d.T, d.H, d.W, 3}, tshape[] = {B, L}, yshape[] = {B, d.n_tags};
  rc |= write(gb, "frames", H5T_NATIVE_UINT8, H5T_STD_U8LE, 5, fshape, fb.frames);
  rc |= write(gb, "title", H5T_NATIVE_INT32, H5T_STD_I32LE, 2, tshape, fb.title);
  rc |= write(gb, "mask", H5T_NATIVE_UINT8, H5T_STD_U8LE, 2, tshape, fb.mask);
  rc |= write(gb, "targets", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, yshape, fb.targets);
  H5Gclose(gb);
  hid_t go = H5Gcreate2(f, "out", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  rc |= write(go, "logits", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 2, yshape, ot_model_logits(m));
  rc |= write(go, "loss", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, 0, NULL, &loss);
  H5Gclose(go);
  if (H5Fclose(f) < 0) rc = 1;
  if (rc) fprintf(stderr, "writing %s failed\n", argv[2]);
  else printf("wrote %s: %d parameters, loss %.6f\n", argv[2], ot_params_count(p), loss);

  fixture_batch_free(&fb);
  ot_model_close(m);
  ot_config_free(&cfg);
  return rc;
}
