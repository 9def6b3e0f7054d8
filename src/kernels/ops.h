/*
 * ops.h: the encoder's non-GEMM operations, each a forward (and, with the
 * training engine, a backward beside it). Outputs first, then inputs, then
 * sizes; shapes in comments. fp32 math throughout; bf16 only as an extra
 * output copy for the next matrix product.
 *
 *     up_layernorm_forward(out, out_bf16, mean, rstd, inp, gamma, beta, rows, C, eps);
 */
#ifndef UP_OPS_H
#define UP_OPS_H

#include <stddef.h>
#include <stdint.h>

/* out (rows,C) = (inp - mean) * rstd * gamma + beta, per row.
 * out_bf16 (rows,C), mean (rows), rstd (rows) may be NULL. */
void up_layernorm_forward(float *out, uint16_t *out_bf16, float *mean, float *rstd,
                          const float *inp, const float *gamma, const float *beta,
                          size_t rows, int C, float eps);

/* Attention probabilities P = softmax(scale * S) with the key padding mask.
 * probs (B,NH,T,T) as fp32 (probs32) or bf16 (probs16), one of them non-NULL;
 * scores (B,NH,T,T) unscaled, overwritten with scratch; lens (B): keys j >= lens[b] get probability 0
 * (HF adds finfo(f32).min to them, which underflows to exactly 0). The scale
 * lives here, not in the GEMM: oneDNN's strided batched matmul runs 6x slower
 * with an output scale. */
void up_attn_softmax_forward(float *probs32, uint16_t *probs16, float *scores,
                             const int32_t *lens, int B, int NH, int T, float scale);

/* x (B,T,C) = word[ids] + pos[t] + type[type_ids]; tables are fp32 (V,C),
 * (P,C), (TV,C); type_ids may be NULL (all 0). */
void up_embed_forward(float *x, const int32_t *ids, const int32_t *type_ids,
                      const float *word, const float *pos, const float *type,
                      int B, int T, int C);

/* Hot loops are compiled for AVX-512 and AVX2 too, picked at run time. */
#define UP_CLONES __attribute__((target_clones("arch=skylake-avx512", "arch=haswell", "default")))

#endif
