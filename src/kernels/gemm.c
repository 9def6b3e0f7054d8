/*
 * gemm.c: up_gemm dispatch and the oneDNN backend.
 *
 * oneDNN matmul primitives are created once per problem (shapes, strides,
 * types, epilogue) and kept in a small cache in the context, with their memory
 * objects; a call then only swaps data handles and executes. The scratchpad
 * is owned by the context (user mode), so steady-state calls allocate nothing.
 */
#include "kernels/gemm.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include "base/base.h"

#ifdef UP_WITH_DNNL
#include <oneapi/dnnl/dnnl.h>

/* The fields of up_gemm_args that define a primitive (no pointers). */
typedef struct {
    int M, N, K, batch0, batch1, batch2;
    int64_t sa0, sa1, sb0, sb1, sc0, sc1, sa2, sb2, sc2, lda, ldb, ldc, ldadd;
    int transA, transB, ta, tb, tc, has_bias, act, has_add, beta_one;
    float alpha;
} gemm_key;

typedef struct {
    gemm_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, bias, dst, add, scratch;
    size_t scratch_size;
    uint64_t last_use;
} gemm_entry;

#define GEMM_CACHE 256
#endif

struct up_gemm_ctx {
    up_backend backend;
    int threads;
#ifdef UP_WITH_DNNL
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    gemm_entry cache[GEMM_CACHE];
    int n_cache;
    uint64_t clock;
    void *scratch; /* shared by all entries: one primitive runs at a time */
    size_t scratch_cap;
#endif
};

#ifdef UP_WITH_DNNL
static up_status dnnl_check(dnnl_status_t s, const char *what) {
    if (s == dnnl_success) return UP_OK;
    return up_fail(UP_ERR_INTERNAL, "oneDNN: %s failed (status %d)", what, (int)s);
}
#define DN(call, what) do { up_status st_ = dnnl_check((call), (what)); if (st_ != UP_OK) goto fail; } while (0)

static void entry_free(gemm_entry *e) {
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->src) dnnl_memory_destroy(e->src);
    if (e->wei) dnnl_memory_destroy(e->wei);
    if (e->bias) dnnl_memory_destroy(e->bias);
    if (e->dst) dnnl_memory_destroy(e->dst);
    if (e->add) dnnl_memory_destroy(e->add);
    if (e->scratch) dnnl_memory_destroy(e->scratch);
    memset(e, 0, sizeof *e);
}

static dnnl_data_type_t dt(int t) {
    return t == UP_T_BF16 ? dnnl_bf16 : t == UP_T_S8 ? dnnl_s8 : t == UP_T_U8 ? dnnl_u8 : dnnl_f32;
}

static int batched(const up_gemm_args *g) { return g->batch0 > 1 || g->batch1 > 1 || g->batch2 > 1; }

/* A (rows, cols) operand, optionally stored transposed, with batch dims
 * (b2, b0, b1) outermost first when batched: 5 dims with batch2, else 4. A
 * zero stride broadcasts (extent 1); an extent-1 dimension gets the stride a
 * dense layout would give it. */
static dnnl_status_t operand_md(dnnl_memory_desc_t *md, const up_gemm_args *g, int rows, int cols,
                                int64_t ld, int trans, const int64_t bs[3], int t) {
    dnnl_dims_t dims, strides;
    int nd = 0, nb = 0;
    if (batched(g)) {
        const int ext[3] = {g->batch2, g->batch0, g->batch1};
        for (int i = g->batch2 > 1 ? 0 : 1; i < 3; i++, nb++) {
            dims[nd] = bs[i] == 0 ? 1 : ext[i];
            strides[nd++] = bs[i];
        }
    }
    dims[nd] = rows; strides[nd++] = trans ? 1 : ld;
    dims[nd] = cols; strides[nd++] = trans ? ld : 1;
    /* extent-1 batch dims: the stride a dense layout gives them (oneDNN
     * picks its AMX kernels only for such plain layouts) */
    for (int i = nb - 1; i >= 0; i--)
        if (dims[i] == 1) {
            int64_t s = 1;
            for (int j = i + 1; j < nd; j++)
                if (dims[j] * strides[j] > s) s = dims[j] * strides[j];
            strides[i] = s;
        }
    return dnnl_memory_desc_init_by_strides(md, nd, dims, dt(t), strides);
}

static up_status entry_create(up_gemm_ctx *c, const up_gemm_args *g, const gemm_key *k, gemm_entry *e) {
    dnnl_memory_desc_t a_md, b_md, c_md, bias_md, add_md;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    memset(e, 0, sizeof *e);
    e->key = *k;
    const int64_t sa[3] = {g->sa2, g->sa0, g->sa1}, sb[3] = {g->sb2, g->sb0, g->sb1}, sc[3] = {g->sc2, g->sc0, g->sc1};
    DN(operand_md(&a_md, g, g->M, g->K, g->lda, g->transA, sa, g->ta), "src desc");
    DN(operand_md(&b_md, g, g->K, g->N, g->ldb, g->transB, sb, g->tb), "weights desc");
    DN(operand_md(&c_md, g, g->M, g->N, g->ldc, 0, sc, g->tc), "dst desc");
    if (g->bias) {
        dnnl_dims_t bd = {1, 1, 1, 1, 1};
        int nd = !batched(g) ? 2 : g->batch2 > 1 ? 5 : 4;
        bd[nd - 1] = g->N;
        DN(dnnl_memory_desc_init_by_tag(&bias_md, nd, bd, dnnl_f32, nd == 5 ? dnnl_abcde : nd == 4 ? dnnl_abcd : dnnl_ab),
           "bias desc");
    }
    dnnl_matmul_desc_t md;
    DN(dnnl_matmul_desc_init(&md, &a_md, &b_md, g->bias ? &bias_md : NULL, &c_md), "matmul desc");
    DN(dnnl_primitive_attr_create(&attr), "attr");
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    if (g->alpha != 1.0f) DN(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &g->alpha), "output scales");
    DN(dnnl_post_ops_create(&po), "post ops");
    static const dnnl_alg_kind_t algs[] = {dnnl_alg_kind_undef, dnnl_eltwise_gelu_erf, dnnl_eltwise_gelu_tanh,
                                           dnnl_eltwise_relu, dnnl_eltwise_tanh};
    if (g->act != UP_EPI_NONE) DN(dnnl_post_ops_append_eltwise(po, 1.0f, algs[g->act], 0.0f, 0.0f), "eltwise post-op");
    int add_idx = -1;
    if (g->add) {
        dnnl_dims_t d2 = {g->M, g->N}, s2 = {g->ldadd, 1};
        DN(dnnl_memory_desc_init_by_strides(&add_md, 2, d2, dnnl_f32, s2), "add desc");
        add_idx = dnnl_post_ops_len(po);
        DN(dnnl_post_ops_append_binary(po, dnnl_binary_add, &add_md), "binary post-op");
    }
    if (g->beta != 0.0f) DN(dnnl_post_ops_append_sum(po, 1.0f), "sum post-op");
    DN(dnnl_primitive_attr_set_post_ops(attr, po), "set post ops");
    DN(dnnl_primitive_desc_create(&pd, &md, attr, c->engine, NULL), "matmul primitive desc");
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    e->scratch_size = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (e->scratch_size > c->scratch_cap) {
        free(c->scratch);
        c->scratch = up_aligned_alloc(e->scratch_size, "oneDNN scratchpad");
        if (!c->scratch) { c->scratch_cap = 0; goto fail_quiet; }
        c->scratch_cap = e->scratch_size;
    }
    DN(dnnl_primitive_create(&e->prim, pd), "matmul primitive");
    DN(dnnl_memory_create(&e->src, &a_md, c->engine, DNNL_MEMORY_NONE), "src memory");
    DN(dnnl_memory_create(&e->wei, &b_md, c->engine, DNNL_MEMORY_NONE), "weights memory");
    DN(dnnl_memory_create(&e->dst, &c_md, c->engine, DNNL_MEMORY_NONE), "dst memory");
    if (g->bias) DN(dnnl_memory_create(&e->bias, &bias_md, c->engine, DNNL_MEMORY_NONE), "bias memory");
    if (g->add) DN(dnnl_memory_create(&e->add, &add_md, c->engine, DNNL_MEMORY_NONE), "add memory");
    (void)add_idx;
    if (e->scratch_size) DN(dnnl_memory_create(&e->scratch, smd, c->engine, DNNL_MEMORY_NONE), "scratchpad memory");
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(po);
    dnnl_primitive_attr_destroy(attr);
    return UP_OK;
fail:
fail_quiet:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    entry_free(e);
    return up_errmsg()[0] ? UP_ERR_INTERNAL : up_fail(UP_ERR_INTERNAL, "oneDNN matmul setup failed");
}

static gemm_key make_key(const up_gemm_args *g) {
    gemm_key k;
    memset(&k, 0, sizeof k); /* padding bytes take part in memcmp */
    k.M = g->M; k.N = g->N; k.K = g->K; k.batch0 = g->batch0; k.batch1 = g->batch1; k.batch2 = g->batch2;
    k.sa0 = g->sa0; k.sa1 = g->sa1; k.sb0 = g->sb0; k.sb1 = g->sb1; k.sc0 = g->sc0; k.sc1 = g->sc1;
    k.sa2 = g->sa2; k.sb2 = g->sb2; k.sc2 = g->sc2;
    k.lda = g->lda; k.ldb = g->ldb; k.ldc = g->ldc; k.ldadd = g->add ? g->ldadd : 0;
    k.transA = g->transA; k.transB = g->transB; k.ta = g->ta; k.tb = g->tb; k.tc = g->tc;
    k.has_bias = g->bias != NULL; k.act = g->act; k.has_add = g->add != NULL; k.beta_one = g->beta != 0.0f;
    k.alpha = g->alpha;
    return k;
}

static up_status gemm_dnnl(up_gemm_ctx *c, const up_gemm_args *g) {
    gemm_key k = make_key(g);
    gemm_entry *e = NULL;
    for (int i = 0; i < c->n_cache; i++)
        if (memcmp(&c->cache[i].key, &k, sizeof k) == 0) { e = &c->cache[i]; break; }
    if (!e) {
        if (c->n_cache < GEMM_CACHE) e = &c->cache[c->n_cache++];
        else { /* evict the least recently used */
            e = &c->cache[0];
            for (int i = 1; i < GEMM_CACHE; i++) if (c->cache[i].last_use < e->last_use) e = &c->cache[i];
            entry_free(e);
        }
        up_status st = entry_create(c, g, &k, e);
        if (st != UP_OK) {
            *e = c->cache[--c->n_cache];
            memset(&c->cache[c->n_cache], 0, sizeof(gemm_entry));
            return st;
        }
    }
    e->last_use = ++c->clock;
    dnnl_memory_set_data_handle(e->src, (void *)g->A);
    dnnl_memory_set_data_handle(e->wei, (void *)g->B);
    dnnl_memory_set_data_handle(e->dst, g->C);
    dnnl_exec_arg_t args[9];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, e->src};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, e->wei};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, e->dst};
    if (e->bias) {
        dnnl_memory_set_data_handle(e->bias, (void *)g->bias);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, e->bias};
    }
    if (e->add) {
        dnnl_memory_set_data_handle(e->add, (void *)g->add);
        int idx = g->act != UP_EPI_NONE ? 1 : 0; /* the post-op index of the add */
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(idx) | DNNL_ARG_SRC_1, e->add};
    }
    if (e->scratch_size) {
        dnnl_memory_set_data_handle(e->scratch, c->scratch);
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    }
    up_status st = dnnl_check(dnnl_primitive_execute(e->prim, c->stream, n, args), "matmul execute");
    if (st != UP_OK) return st;
    return dnnl_check(dnnl_stream_wait(c->stream), "stream wait");
}
#endif

up_status up_gemm_ctx_new(up_backend backend, int threads, up_gemm_ctx **out) {
    *out = NULL;
    up_gemm_ctx *c = up_calloc(1, sizeof *c, "gemm context");
    if (!c) return UP_ERR_NOMEM;
#ifdef UP_WITH_DNNL
    if (backend == UP_BACKEND_AUTO) backend = UP_BACKEND_DNNL;
#else
    if (backend == UP_BACKEND_AUTO) backend = UP_BACKEND_REF;
    if (backend == UP_BACKEND_DNNL) {
        free(c);
        return up_fail(UP_ERR_UNSUPPORTED, "this build has no oneDNN backend (built with UP_WITH_DNNL=OFF)");
    }
#endif
    c->backend = backend;
    c->threads = threads > 0 ? threads : omp_get_max_threads();
#ifdef UP_WITH_DNNL
    if (backend == UP_BACKEND_DNNL) {
        if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success ||
            dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags) != dnnl_success) {
            up_gemm_ctx_free(c);
            return up_fail(UP_ERR_INTERNAL, "oneDNN: cannot create the CPU engine");
        }
    }
#endif
    *out = c;
    return UP_OK;
}

void up_gemm_ctx_free(up_gemm_ctx *c) {
    if (!c) return;
#ifdef UP_WITH_DNNL
    for (int i = 0; i < c->n_cache; i++) entry_free(&c->cache[i]);
    if (c->stream) dnnl_stream_destroy(c->stream);
    if (c->engine) dnnl_engine_destroy(c->engine);
    free(c->scratch);
#endif
    free(c);
}

up_backend up_gemm_ctx_backend(const up_gemm_ctx *c) { return c->backend; }

up_status up_gemm(up_gemm_ctx *c, const up_gemm_args *g) {
    if (g->M <= 0 || g->N <= 0 || g->K <= 0 || g->batch0 <= 0 || g->batch1 <= 0 || g->batch2 <= 0)
        return up_fail(UP_ERR_INVALID, "gemm: sizes must be positive, got M=%d N=%d K=%d batch=%dx%dx%d",
                       g->M, g->N, g->K, g->batch2, g->batch0, g->batch1);
    if ((g->batch0 > 1 && !g->sc0) || (g->batch1 > 1 && !g->sc1) || (g->batch2 > 1 && !g->sc2))
        return up_fail(UP_ERR_INVALID, "gemm: the output cannot be broadcast (zero batch stride)");
    if ((g->batch0 > 1 && !g->sa0 && !g->sb0) || (g->batch1 > 1 && !g->sa1 && !g->sb1) ||
        (g->batch2 > 1 && !g->sa2 && !g->sb2))
        return up_fail(UP_ERR_INVALID, "gemm: both operands broadcast over one batch dimension");
    if (g->add && (g->batch0 > 1 || g->batch1 > 1 || g->batch2 > 1))
        return up_fail(UP_ERR_INVALID, "gemm: a residual add is not supported with batches");
    if ((g->ta == UP_T_S8 || g->ta == UP_T_U8 || g->tb == UP_T_S8 || g->tb == UP_T_U8) &&
        ((g->ta != UP_T_S8 && g->ta != UP_T_U8) || g->tb != UP_T_S8 || g->tc != UP_T_F32 || g->alpha != 1.0f ||
         g->transA || g->bias || g->act || g->add || g->beta != 0.0f))
        return up_fail(UP_ERR_INVALID, "gemm: int8 takes u8 or s8 A, s8 B, fp32 C and gives the plain sums (alpha 1, "
                       "no bias, act, add or beta)");
#ifdef UP_WITH_DNNL
    if (c->backend == UP_BACKEND_DNNL && g->tb == UP_T_S8 && !up_kernel_int8())
        return up_fail(UP_ERR_UNSUPPORTED, "int8 products need VNNI or AMX, and oneDNN dispatches to %s here",
                       up_kernel_isa());
    if (c->backend == UP_BACKEND_DNNL) return gemm_dnnl(c, g);
#endif
    up_gemm_ref(g);
    return UP_OK;
}

int up_kernel_int8(void) {
    const char *isa = up_kernel_isa();
    return !strcmp(isa, "amx") || !strcmp(isa, "avx512_bf16") || !strcmp(isa, "avx512_vnni") || !strcmp(isa, "avx2_vnni");
}

const char *up_kernel_isa(void) {
#ifdef UP_WITH_DNNL
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    if ((isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx) return "amx";
    if ((isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16) return "avx512_bf16";
    if ((isa & dnnl_cpu_isa_avx512_core_vnni) == dnnl_cpu_isa_avx512_core_vnni) return "avx512_vnni";
    if ((isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core) return "avx512";
    if ((isa & dnnl_cpu_isa_avx2_vnni) == dnnl_cpu_isa_avx2_vnni) return "avx2_vnni";
    if ((isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2) return "avx2";
    return "sse41";
#else
    return "reference";
#endif
}
