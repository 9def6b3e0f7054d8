/* unicode.c: UTF-8 decoding and HF BertTokenizer character classes on utf8proc. */
#include "text/unicode.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "base/base.h"

up_status up_u32buf_reserve(up_u32buf *b, size_t extra) {
    size_t need;
    if (!up_add_ok(b->n, extra, &need)) return up_fail(UP_ERR_NOMEM, "code point buffer size overflow");
    if (need <= b->cap) return UP_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (!up_mul_ok(cap, 2, &cap)) return up_fail(UP_ERR_NOMEM, "code point buffer size overflow");
    }
    size_t bytes;
    if (!up_mul_ok(cap, sizeof *b->v, &bytes)) return up_fail(UP_ERR_NOMEM, "code point buffer size overflow");
    uint32_t *v = realloc(b->v, bytes);
    if (!v) return up_fail(UP_ERR_NOMEM, "out of memory allocating %zu bytes for code points", bytes);
    b->v = v;
    b->cap = cap;
    return UP_OK;
}

void up_u32buf_free(up_u32buf *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

/* ---- UTF-8 --------------------------------------------------------------- */

size_t up_utf8_step(const uint8_t *s, size_t n, uint32_t *cp, size_t *bad) {
    uint8_t b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    /* Table 3-7 of the Unicode standard: the range of the second byte depends
     * on the first (this is what rules out overlongs, surrogates and code
     * points above U+10FFFF); later bytes are always 80..BF. */
    size_t len;
    uint8_t lo = 0x80, hi = 0xBF;
    uint32_t c;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        len = 2;
        c = b0 & 0x1Fu;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        c = b0 & 0x0Fu;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        c = b0 & 0x07u;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else {
        *bad = 1; /* 80..C1 or F5..FF can start nothing */
        return 0;
    }
    for (size_t i = 1; i < len; i++) {
        uint8_t lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if (i >= n || s[i] < lo_i || s[i] > hi_i) {
            *bad = i; /* the lead byte and the continuation bytes that fit so far */
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    *cp = c;
    return len;
}

up_status up_utf8_decode(const uint8_t *s, size_t n, up_u32buf *out) {
    if (n == 0) return UP_OK; /* out->v may still be NULL */
    up_status st = up_u32buf_reserve(out, n); /* never more code points than bytes */
    if (st != UP_OK) return st;
    uint32_t *o = out->v + out->n;
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { /* ASCII fast path */
            *o++ = s[i++];
            continue;
        }
        uint32_t cp;
        size_t bad = 0, len = up_utf8_step(s + i, n - i, &cp, &bad);
        if (len) {
            *o++ = cp;
            i += len;
        } else {
            *o++ = UP_UNI_REPLACEMENT;
            i += bad;
        }
    }
    out->n = (size_t)(o - out->v);
    return UP_OK;
}

size_t up_utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- character classes ----------------------------------------------------- */

int up_uni_is_control(uint32_t c) {
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    if (c < 0x80) return c < 0x20 || c == 0x7F; /* ASCII: only Cc */
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN: return 1;
    default: return 0;
    }
}

int up_uni_is_whitespace(uint32_t c) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') return 1;
    if (c < 0x80) return 0;
    return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_ZS;
}

int up_uni_is_punctuation(uint32_t c) {
    /* HF counts every ASCII non-letter, non-digit symbol ("$", "^", "`", ...)
     * as punctuation, though Unicode puts some of them in S*. */
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126))
        return 1;
    if (c < 0x80) return 0;
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
    return cat >= UTF8PROC_CATEGORY_PC && cat <= UTF8PROC_CATEGORY_PO;
}

int up_uni_is_cjk(uint32_t c) {
    /* The exact ranges of BasicTokenizer._is_chinese_char. */
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

int up_uni_is_pyspace(uint32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)c);
    return p->category == UTF8PROC_CATEGORY_ZS || p->bidi_class == UTF8PROC_BIDI_CLASS_WS ||
           p->bidi_class == UTF8PROC_BIDI_CLASS_B || p->bidi_class == UTF8PROC_BIDI_CLASS_S;
}

int up_uni_is_mn(uint32_t c) {
    if (c < 0x300) return 0; /* U+0300 is the first Mn */
    return utf8proc_category((utf8proc_int32_t)c) == UTF8PROC_CATEGORY_MN;
}

int up_uni_lower(uint32_t c, uint32_t out[2]) {
    if (c < 0x80) {
        out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        return 1;
    }
    /* SpecialCasing.txt has exactly one unconditional lowercase mapping longer
     * than one code point; everything else is UnicodeData's simple mapping,
     * which is what utf8proc_tolower gives. Checked over all code points
     * against Python's str.lower(). */
    if (c == 0x130) {
        out[0] = 0x69;
        out[1] = 0x307;
        return 2;
    }
    out[0] = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    return 1;
}

/* ---- normalization ---------------------------------------------------------- */

static int ccc(uint32_t c) {
    if (c < 0x300) return 0;
    return utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
}

up_status up_uni_nfd(const uint32_t *in, size_t n, up_u32buf *out) {
    size_t start = out->n;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        up_status st = up_u32buf_reserve(out, 8);
        if (st != UP_OK) return st;
        if (c < 0xC0) { /* nothing below U+00C0 has a canonical decomposition */
            out->v[out->n++] = c;
            continue;
        }
        /* A canonical decomposition is at most 4 code points; 8 leaves room. */
        int boundclass = 0;
        utf8proc_ssize_t k = utf8proc_decompose_char((utf8proc_int32_t)c, (utf8proc_int32_t *)out->v + out->n,
                                                     8, UTF8PROC_DECOMPOSE, &boundclass);
        if (k < 0 || k > 8) return up_fail(UP_ERR_INTERNAL, "utf8proc cannot decompose U+%04X", (unsigned)c);
        out->n += (size_t)k;
    }
    /* Canonical ordering: within each run of non-starters, a stable sort by
     * combining class (runs are short, insertion sort is enough). */
    uint32_t *v = out->v;
    for (size_t i = start + 1; i < out->n; i++) {
        int ci = ccc(v[i]);
        if (ci == 0) continue;
        size_t j = i;
        uint32_t c = v[i];
        while (j > start && ccc(v[j - 1]) > ci) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = c;
    }
    return UP_OK;
}

up_status up_uni_nfc(const uint32_t *in, size_t n, up_u32buf *out) {
    if (n == 0) return UP_OK;
    size_t start = out->n;
    up_status st = up_uni_nfd(in, n, out);
    if (st != UP_OK) return st;
    utf8proc_ssize_t k = utf8proc_normalize_utf32((utf8proc_int32_t *)out->v + start,
                                                  (utf8proc_ssize_t)(out->n - start), UTF8PROC_COMPOSE);
    if (k < 0) return up_fail(UP_ERR_INTERNAL, "utf8proc composition failed: %s", utf8proc_errmsg(k));
    out->n = start + (size_t)k;
    return UP_OK;
}
