/*
 * unicode.h: UTF-8 decoding and the character classes of Hugging Face's
 * BertTokenizer, on top of utf8proc's Unicode tables.
 *
 * Each class is defined as the Python code of tokenization_bert.py /
 * tokenization_utils.py defines it (unicodedata categories, str.lower(),
 * str.isspace(), NFC/NFD), so that the tokenizer can follow HF step by step.
 *
 *     up_u32buf cps = {0};
 *     if (up_utf8_decode((const uint8_t *)"caf\xc3\xa9", 5, &cps) != UP_OK) return;
 *     // cps.v = {'c', 'a', 'f', 0xE9}, cps.n = 4
 *     up_u32buf_free(&cps);
 */
#ifndef UP_TEXT_UNICODE_H
#define UP_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>
#include "unplug.h"

#define UP_UNI_REPLACEMENT 0xFFFDu

/* A growable array of code points; {0} is an empty one. */
typedef struct {
    uint32_t *v;
    size_t n, cap;
} up_u32buf;

/* Makes room for `extra` more code points after v[n]; UP_ERR_NOMEM on failure. */
up_status up_u32buf_reserve(up_u32buf *b, size_t extra);
void up_u32buf_free(up_u32buf *b);

/* ---- UTF-8 --------------------------------------------------------------- */

/* One step of a strict UTF-8 decoder at s[0..n), n >= 1. Returns the length
 * (1..4) of the well-formed sequence there and sets *cp; or returns 0 and sets
 * *bad to the length of the maximal subpart of an ill-formed sequence (the
 * longest prefix of s that begins some well-formed sequence, at least 1 byte).
 * Well-formed is Unicode's table 3-7: no overlongs, no surrogates, at most
 * U+10FFFF. */
size_t up_utf8_step(const uint8_t *s, size_t n, uint32_t *cp, size_t *bad);

/* Appends the code points of s[0..n) to out, each maximal ill-formed subpart
 * becoming one U+FFFD. This is exactly what Python's
 * bytes.decode("utf-8", errors="replace") does, which HF would be handed. */
up_status up_utf8_decode(const uint8_t *s, size_t n, up_u32buf *out);

/* Writes the UTF-8 of cp (<= 0x10FFFF, not a surrogate) to out; returns the
 * number of bytes (1..4). */
size_t up_utf8_encode(uint32_t cp, char *out);

/* ---- character classes (as HF's Python helpers define them) -------------- */

/* _is_control: category C* (Cc, Cf, Cs, Co, Cn), except \t \n \r, which HF
 * counts as whitespace. Note Cn: a code point unassigned in the Unicode version
 * of the tables (utf8proc 2.8: Unicode 15.0) is dropped by HF as a control. */
int up_uni_is_control(uint32_t c);
/* _is_whitespace: ' ', \t, \n, \r or category Zs. */
int up_uni_is_whitespace(uint32_t c);
/* _is_punctuation: ASCII 33-47, 58-64, 91-96, 123-126, or category P*. */
int up_uni_is_punctuation(uint32_t c);
/* _is_chinese_char: the CJK ideograph blocks HF lists (not kana, not Hangul). */
int up_uni_is_cjk(uint32_t c);
/* Python's str.isspace(), which str.split() and str.strip() use: bidi class
 * WS, B or S, or category Zs. */
int up_uni_is_pyspace(uint32_t c);
/* category Mn (nonspacing mark), what _run_strip_accents drops after NFD. */
int up_uni_is_mn(uint32_t c);

/* Python's str.lower() of one character: the full lowercase mapping, which
 * is the simple one except U+0130 (I with dot above) -> U+0069 U+0307. Writes
 * 1 or 2 code points to out and returns how many. (Final sigma, the only
 * context-dependent rule of str.lower(), never applies in BertTokenizer: it
 * lowercases the text one character at a time first, see tokenizer.c.) */
int up_uni_lower(uint32_t c, uint32_t out[2]);

/* ---- normalization -------------------------------------------------------- */

/* Appends NFD(in[0..n)) to out: canonical decomposition (Hangul included)
 * then canonical ordering of combining marks. */
up_status up_uni_nfd(const uint32_t *in, size_t n, up_u32buf *out);
/* Appends NFC(in[0..n)) to out. */
up_status up_uni_nfc(const uint32_t *in, size_t n, up_u32buf *out);

#endif
