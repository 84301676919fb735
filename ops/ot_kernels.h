/* Forward/backward kernel pairs on float row-major tensors (llm.c style).
 *
 * x_forward(out, ..., inp, weights, dims) / x_backward(dinp, dweights, ...,
 * dout, saved inputs, weights, dims). Every backward ACCUMULATES (+=) into
 * its gradient outputs, so gradients flowing into one tensor from several
 * uses simply add up; zero them before the first use. Gradient outputs
 * marked "(may be NULL)" are skipped when NULL (e.g. no dinp for a first
 * layer, frozen weights). No allocation inside
 * a kernel: scratch comes from the caller (the step's arena).
 * Dimensions are ints; products are formed in size_t. Threads: none of our
 * own; OpenBLAS uses whatever the caller configured. */
#ifndef OT_KERNELS_H
#define OT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Linear layer, out = inp @ weight^T + bias.
 * inp [N,C], weight [OC,C], bias [OC] or NULL -> out [N,OC]. */
void ot_linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int N, int C, int OC);
/* dinp [N,C] += dout @ weight; dweight [OC,C] += dout^T @ inp; dbias [OC] +=
 * column sums of dout [N,OC]. All three may be NULL. */
void ot_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int N, int C, int OC);

/* The same, but dinp [N,C] is OVERWRITTEN (= dout @ weight) instead of
 * accumulated; dweight and dbias still accumulate. For a fresh gradient
 * buffer: saves zeroing it and reading it back. dinp must not be NULL. */
void ot_linear_backward_set(float *dinp, float *dweight, float *dbias, const float *dout,
                            const float *inp, const float *weight, int N, int C, int OC);

/* LayerNorm over the last dim, eps 1e-5: out = (x - mean) * rstd * w + b.
 * inp [N,C], w [C], b [C] -> out [N,C], mean [N], rstd [N] (saved for the
 * backward; NULL allowed in inference). */
#define OT_LAYERNORM_EPS 1e-5f
void ot_layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int N, int C);
/* dinp [N,C], dw [C], db [C] += ... (each may be NULL); needs the forward's
 * inp, mean, rstd. */
void ot_layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                           const float *inp, const float *w, const float *mean,
                           const float *rstd, int N, int C);

/* GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 * inp [n] -> out [n] (out may equal inp). */
void ot_gelu_forward(float *out, const float *inp, size_t n);
/* The forward that also writes grad [n] = gelu'(inp), for a backward that
 * is then one multiply (ot_mul_inplace); grad may equal inp (out may not
 * alias either). Why: gelu' needs the forward's tanh; recomputing it in the
 * backward cost 1.6x the forward, storing gelu' costs 0.3x, and the result
 * is bit for bit the same. */
void ot_gelu_forward_grad(float *out, float *grad, const float *inp, size_t n);
/* dinp [n] += gelu'(inp) * dout; dinp must not alias dout. */
void ot_gelu_backward(float *dinp, const float *inp, const float *dout, size_t n);

/* Row softmax. inp [N,C] -> out [N,C] (out may equal inp). */
void ot_softmax_forward(float *out, const float *inp, int N, int C);
/* dinp [N,C] += out * (dout - rowsum(dout * out)); needs the forward's out. */
void ot_softmax_backward(float *dinp, const float *dout, const float *out, int N, int C);

/* Residual add. a [n], b [n] -> out [n] (out may equal a or b). */
void ot_residual_forward(float *out, const float *a, const float *b, size_t n);
/* da [n] += dout; db [n] += dout (either may be NULL). */
void ot_residual_backward(float *da, float *db, const float *dout, size_t n);
/* y [n] += x [n]. */
void ot_add_inplace(float *y, const float *x, size_t n);
/* y [n] *= x [n]. */
void ot_mul_inplace(float *y, const float *x, size_t n);

/* Inverted dropout with a counter-based mask over `rows` rows of `row_len`
 * values: element j of row r is kept iff hash(seed, row0 + r, j) >= p * 2^32,
 * and kept values are scaled by 1/(1-p). The mask is a pure function of
 * (seed, global row, j), so the backward recomputes it instead of storing
 * it, and a row (an item) gets the same mask whichever pass or rank holds
 * it when row0 is its global position. 0 <= p < 1; p == 0 copies.
 * inp [rows,row_len] -> out (may equal inp). row_len < 2^32. */
void ot_dropout_forward(float *out, const float *inp, size_t rows, size_t row_len, float p,
                        uint64_t seed, uint64_t row0);
/* dinp += mask * dout / (1-p); same arguments as the forward. */
void ot_dropout_backward(float *dinp, const float *dout, size_t rows, size_t row_len, float p,
                         uint64_t seed, uint64_t row0);

/* Row L2 normalisation, out = x / sqrt(|x|^2 + 1e-12) (smooth at 0).
 * inp [N,D] -> out [N,D]. */
void ot_l2norm_forward(float *out, const float *inp, int N, int D);
/* dinp [N,D] += r (dout - y <dout, y>), y = out, r = 1/sqrt(|x|^2 + eps);
 * recomputed from inp. */
void ot_l2norm_backward(float *dinp, const float *dout, const float *inp, int N, int D);

/* Token + positional embedding.
 * tokens [B,T] in [0,V), wte [V,C], wpe [>=T,C] or NULL -> out [B,T,C]. */
void ot_embed_forward(float *out, const int32_t *tokens, const float *wte, const float *wpe,
                      int B, int T, int C);
/* dwte [V,C] += scatter of dout [B,T,C] by token; dwpe [T,C] += sum over B
 * (either may be NULL). */
void ot_embed_backward(float *dwte, float *dwpe, const float *dout, const int32_t *tokens,
                       int B, int T, int C);

/* Patch embedding of frames (ViT style, frames share the projection).
 * frames uint8 [B,T,H,W,3] (RGB), P divides H and W; Np = (H/P)(W/P),
 * K = P*P*3. Bytes are mapped to x = byte/127.5 - 1 in [-1, 1]; each P x P
 * patch is flattened in (row, column, channel) order into patches
 * [B*T*Np, K] (saved for the backward), then
 * out [B, T*Np, C] = patches @ weight^T + bias + pos_space[n] + pos_time[t]
 * with weight [C,K], bias [C], pos_space [Np,C], pos_time [T,C] (each of
 * bias / pos_space / pos_time may be NULL). Token order: frame-major, patches
 * of a frame in raster order. */
void ot_patch_embed_forward(float *out, float *patches, const uint8_t *frames,
                            const float *weight, const float *bias, const float *pos_space,
                            const float *pos_time, int B, int T, int H, int W, int P, int C);
/* Precomputed per-frame features (e.g. CLIP vectors) as visual tokens, one
 * per frame: features [B,T,D] are copied into rows [B*T,D] (saved for the
 * backward), then out [B,T,C] = rows @ weight^T + bias + pos_time[t], with
 * weight [C,D], bias [C], pos_time [T,C] (bias / pos_time may be NULL). */
void ot_feature_embed_forward(float *out, float *rows, const float *features, const float *weight,
                              const float *bias, const float *pos_time, int B, int T, int D, int C);
/* Backward of both: dweight [C,K], dbias [C], dpos_space [Np,C], dpos_time
 * [T,C] += ... from dout [B,T*Np,C] and the saved rows [B*T*Np,K] (patches,
 * K = P*P*3; or features, Np = 1, K = D, dpos_space NULL). Each may be NULL;
 * the inputs have no gradient. */
void ot_patch_embed_backward(float *dweight, float *dbias, float *dpos_space, float *dpos_time,
                             const float *dout, const float *patches, int B, int T, int Np,
                             int K, int C);

/* Mean over valid positions. inp [B,T,C], mask [B,T] (1 valid, 0 padding;
 * NULL: all valid) -> out [B,C]; a row with no valid position gives 0. */
void ot_meanpool_forward(float *out, const float *inp, const uint8_t *mask, int B, int T, int C);
/* dinp [B,T,C] += mask * dout [B,C] / count. */
void ot_meanpool_backward(float *dinp, const float *dout, const uint8_t *mask, int B, int T,
                          int C);

#endif
