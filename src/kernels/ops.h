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

/* dinp (rows,C) += d out / d inp; dgamma, dbeta (C) += their gradients
 * (NULL: not needed). mean, rstd are what the forward saved. */
void up_layernorm_backward(float *dinp, float *dgamma, float *dbeta, const float *dout,
                           const float *inp, const float *gamma, const float *mean, const float *rstd,
                           size_t rows, int C);

/* dscores (B,NH,T,T) = d/dS of P = softmax(scale * S) (overwrites, not +=:
 * scores are a temporary); dprobs, probs (B,NH,T,T) fp32. */
void up_attn_softmax_backward(float *dscores, const float *dprobs, const float *probs,
                              int B, int NH, int T, float scale);

typedef enum { UP_ACTFN_GELU = 0, UP_ACTFN_GELU_TANH, UP_ACTFN_RELU, UP_ACTFN_TANH, UP_ACTFN_NONE } up_actfn;
/* out (n) = act(inp); training keeps the pre-activation for the backward. */
void up_act_forward(float *out, const float *inp, size_t n, up_actfn a);
/* Symmetric int8 per row: scale[m] = max_k |x[m,k]| / 127 and
 * q[m,k] = round(x[m,k] / scale[m]) in -127..127, for x (M,K) with row
 * stride ldx (q is dense (M,K)). Weights per output channel, activations per
 * token. A row of zeros gets scale 0. */
void up_quant_rows_s8(int8_t *q, float *scale, const float *x, size_t M, int K, int64_t ldx);
/* Activations, asymmetric uint8: lo[m] = min(x[m,:], 0) and hi[m] =
 * max(x[m,:], 0) of each row of x (M,K) with row stride ldx ... */
void up_row_ranges(float *lo, float *hi, const float *x, size_t M, int K, int64_t ldx);
/* ... and q[m,k] = round((x[m,k] - lo[m]) / scale[m]) clamped to 0..255,
 * into dense q (M,K): x[m,:] ~ lo[m] + scale[m] q[m,:] (scale 0: q 0). */
void up_quant_u8(uint8_t *q, const float *x, size_t M, int K, int64_t ldx, const float *lo, const float *scale);
/* The epilogue of an int8 product y = act(x W^T + bias) + add, done here
 * rather than in oneDNN (its per-column scale and bias post-ops and erf
 * GELU took 6.4 of the 10 ms of all-MiniLM's first FFN product at
 * 32 x 128), and with a scale and offset per input row, which oneDNN's fast
 * int8 kernels do not take. Input row m was x[m,:] ~ offset[m] +
 * scale[m] q[m,:] (up_quant_u8) and W[n,:] = ws[n] Wq[n,:] with
 * wsum[n] = ws[n] sum_k Wq[n,k], so x W^T[m,n] = scale[m] ws[n] (q Wq^T)[m,n]
 * + offset[m] wsum[n]. */
typedef struct {
    const float *scale, *offset;    /* (M) the input rows' quantization */
    const float *ws, *wsum, *bias;  /* (N) the weights' scales and scaled row sums; bias or NULL */
    up_actfn act;                   /* UP_ACTFN_NONE: none */
    const float *add;               /* (M,N) with row stride ldadd, or NULL; may not overlap y */
    int64_t ldadd;
} up_int8_epi;
/* y (M,N) with row stride ldy holds the integer sums q Wq^T as fp32 and
 * becomes the product; lo, hi (M) (both or neither NULL) get each output
 * row's range as up_row_ranges gives it, for a next product's
 * quantization; lo may be e->offset (each row reads its offset first). */
void up_dequant_act(float *y, int64_t ldy, size_t M, int N, const up_int8_epi *e, float *lo, float *hi);
/* int8 attention, the QKV product's epilogue: acc (B*T, P*NH*D) with row
 * stride ld holds its plain integer sums; each (row, part p, head h)
 * segment of D values v = scale[m] ws[n] acc + offset[m] wsum[n] + bias[n]
 * (e's act and add unused) goes to int8 with its own symmetric scale:
 * q (P,B,NH,T,D)[p,b,h,t,:] = round(v / s), s = max |v| / 127 into
 * qs (P,B,NH,T). */
void up_dequant_heads_s8(int8_t *q, float *qs, const float *acc, int64_t ld, int B, int T, int P, int NH, int D,
                         const up_int8_epi *e);
/* int8 attention's softmax, over S (B,NH,T,T) = Q8 K8^T as integer sums
 * with Q's scales sq and K's sk (B,NH,T): P = softmax(scale sq[i] sk[j]
 * S[i,j]) with the key padding mask of lens (B), then W[i,j] = P[i,j] sv[j]
 * (V's scales, so that P V = W V8) to uint8 per row: p8[i,j] =
 * round(255 W[i,j] / max_j W[i,j]), rowf[i] = max_j W[i,j] / 255, and
 * P V = rowf (p8 V8). scores is overwritten. */
void up_attn_softmax_u8(uint8_t *p8, float *rowf, float *scores, const int32_t *lens, int B, int NH, int T,
                        float scale, const float *sq, const float *sk, const float *sv);
/* dinp (n) += dout * act'(inp) */
void up_act_backward(float *dinp, const float *dout, const float *inp, size_t n, up_actfn a);
/* tanh backward from the output y: dinp += dout * (1 - y^2) */
void up_tanh_backward_from_out(float *dinp, const float *dout, const float *out, size_t n);

/* dword/dpos/dtype (tables) += scatter of dx (B,T,C); NULL tables skipped. */
void up_embed_backward(float *dword, float *dpos, float *dtype, const float *dx,
                       const int32_t *ids, const int32_t *type_ids, int B, int T, int C);

/* Mean cross-entropy of rows (N,V) of logits against targets (N); targets
 * < 0 are ignored. Returns the mean loss over counted rows and writes dlogits
 * = d(mean loss)/dlogits * grad_scale (may alias logits). *count gets the
 * number of rows counted. probs of the gold label optional (N) or NULL. */
double up_xent_forward_backward(float *dlogits, const float *logits, const int32_t *targets,
                                size_t N, int V, float grad_scale, size_t *count);

/* db (N) += column sums of dy (M,N). */
void up_bias_backward(float *db, const float *dy, size_t M, int N);

/* Hot loops are compiled for AVX-512 and AVX2 too, picked at run time. */
#define UP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

#endif
