/* Multi-head scaled dot-product attention for batched variable-length
 * sequences: self-attention (q, k, v from one sequence, optionally causal)
 * and cross-attention (q from one sequence, k and v from another), with key
 * padding masks. Projections are separate linear kernels; this is the
 * softmax(q k^T / sqrt(hs)) v part, computed per (batch, head) with
 * cblas_sgemm directly on strided slices (no copies): a packed qkv buffer
 * [B,T,3C] is passed as q = qkv, k = qkv + C, v = qkv + 2C, ld = 3C.
 *
 * Layout: row (b, i) of q starts at q + (b*Tq + i)*ldq, head h is its
 * columns [h*hs, (h+1)*hs) with hs = C/NH; likewise k, v with Tk rows per
 * batch item. key_mask [B,Tk]: 1 = valid key, 0 = padding (NULL: all
 * valid). causal: key j is visible to query i iff j <= i (needs Tq == Tk).
 * A query with no visible key gets zero weights and a zero output. Keys
 * after a batch item's last valid key are skipped entirely, so padding
 * costs nothing in the products. */
#ifndef OT_ATTENTION_H
#define OT_ATTENTION_H

#include <stdint.h>

/* q [B,Tq,(ldq)], k [B,Tk,(ldk)], v [B,Tk,(ldv)] -> out [B,Tq,C] (contiguous),
 * att [B,NH,Tq,Tk] = attention weights (0 at masked keys), saved for the
 * backward. NH divides C. */
void ot_attention_forward(float *out, float *att, const float *q, int ldq, const float *k,
                          int ldk, const float *v, int ldv, const uint8_t *key_mask, int causal,
                          int B, int Tq, int Tk, int C, int NH);

/* dout [B,Tq,C] -> dq, dk, dv (+=), laid out with the same row strides as q,
 * k, v (so a packed dqkv buffer works the same way). scratch: Tq*Tk floats.
 * Same key_mask / causal / dims as the forward. */
void ot_attention_backward(float *dq, float *dk, float *dv, float *scratch, const float *dout,
                           const float *att, const float *q, int ldq, const float *k, int ldk,
                           const float *v, int ldv, const uint8_t *key_mask, int causal, int B,
                           int Tq, int Tk, int C, int NH);

#endif
