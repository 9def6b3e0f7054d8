"""Minimal reader for R lazy-load databases (data/Rdata.rdx + Rdata.rdb).

Python 3 stdlib only. Enough of R's XDR serialization format (versions 2
and 3) to read character vectors, lists and attributes, which is what text
data packages such as r-cran-janeaustenr ship. Not a general R reader.
"""
import bz2
import gzip
import lzma
import struct
import zlib

NILVALUE_SXP = 254
GLOBALENV_SXP = 253
UNBOUNDVALUE_SXP = 252
MISSINGARG_SXP = 251
BASENAMESPACE_SXP = 247
EMPTYENV_SXP = 242
BASEENV_SXP = 241
REFSXP = 255


class RObj:
    """An R value: .type (SEXP type), .value (python value), .attr (dict)."""

    def __init__(self, t, value, attr=None):
        self.type = t
        self.value = value
        self.attr = attr or {}

    def __repr__(self):
        return "RObj(%d, %r)" % (self.type, self.value if not isinstance(self.value, list) else "[%d]" % len(self.value))


class _Reader:
    def __init__(self, data):
        self.d = data
        self.p = 0
        self.refs = []

    def int(self):
        v = struct.unpack_from(">i", self.d, self.p)[0]
        self.p += 4
        return v

    def bytes(self, n):
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def header(self):
        fmt = self.bytes(2)
        if fmt != b"X\n":
            raise ValueError("only XDR R serialization is supported, got %r" % fmt)
        version = self.int()
        self.int()  # writer R version
        self.int()  # min reader version
        if version == 3:
            n = self.int()
            self.bytes(n)  # native encoding name

    def item(self):
        flags = self.int()
        t = flags & 0xFF
        has_attr = bool(flags & (1 << 9))
        has_tag = bool(flags & (1 << 10))
        if t == NILVALUE_SXP:
            return None
        if t in (GLOBALENV_SXP, UNBOUNDVALUE_SXP, MISSINGARG_SXP, BASENAMESPACE_SXP, EMPTYENV_SXP, BASEENV_SXP):
            return RObj(t, None)
        if t == REFSXP:
            idx = flags >> 8
            if idx == 0:
                idx = self.int()
            return self.refs[idx - 1]
        if t == 1:  # SYMSXP
            obj = RObj(1, None)
            self.refs.append(obj)
            obj.value = self.item().value  # CHARSXP
            return obj
        if t in (2, 6):  # LISTSXP / LANGSXP: pairlist
            items = []
            while True:
                if has_attr:
                    self.item()  # attributes of a pairlist cell: not needed
                tag = self.item() if has_tag else None
                car = self.item()
                items.append(((tag.value if tag is not None else None), car))
                nxt = self.int()
                nt = nxt & 0xFF
                if nt == NILVALUE_SXP:
                    break
                if nt != t:
                    self.p -= 4
                    items.append((None, self.item()))
                    break
                has_attr = bool(nxt & (1 << 9))
                has_tag = bool(nxt & (1 << 10))
            return RObj(t, items)
        if t == 4:  # ENVSXP
            obj = RObj(4, None)
            self.refs.append(obj)
            self.int()  # locked
            self.item()  # enclos
            self.item()  # frame
            self.item()  # hashtab
            self.item()  # attrib
            return obj
        if t == 9:  # CHARSXP
            n = self.int()
            if n == -1:
                return RObj(9, None)
            return RObj(9, self.bytes(n).decode("utf-8", "replace"))
        if t in (10, 13):  # LGLSXP, INTSXP
            n = self.int()
            vals = list(struct.unpack_from(">%di" % n, self.d, self.p))
            self.p += 4 * n
            obj = RObj(t, vals)
        elif t == 14:  # REALSXP
            n = self.int()
            vals = list(struct.unpack_from(">%dd" % n, self.d, self.p))
            self.p += 8 * n
            obj = RObj(t, vals)
        elif t == 16:  # STRSXP
            n = self.int()
            obj = RObj(t, [self.item().value for _ in range(n)])
        elif t in (19, 20):  # VECSXP, EXPRSXP
            n = self.int()
            obj = RObj(t, [self.item() for _ in range(n)])
        else:
            raise ValueError("unsupported R SEXP type %d" % t)
        if has_attr:
            at = self.item()
            if at is not None and at.type == 2:
                obj.attr = {k: v for k, v in at.value}
        return obj


def unserialize(data):
    r = _Reader(data)
    r.header()
    return r.item()


def _decompress_block(block):
    """A lazy-load database entry: 4-byte big-endian length, then a type byte
    ('Z' zlib, '2' bzip2, 'X' xz, '0' none) or plain zlib data."""
    n = struct.unpack(">I", block[:4])[0]
    body = block[4:]
    tag = body[:1]
    if tag == b"2":
        return bz2.decompress(body[1:])
    if tag == b"X":
        return lzma.decompress(body[1:])
    if tag == b"Z":
        return zlib.decompress(body[1:])
    if tag == b"0":
        return body[1:1 + n]
    return zlib.decompress(body)


def read_lazyload(rdx_path, rdb_path):
    """Returns {variable name: RObj} for every variable in the database."""
    raw = open(rdx_path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        idx = unserialize(gzip.decompress(raw))
    else:
        idx = unserialize(_decompress_block(raw))
    names = idx.attr["names"].value
    top = dict(zip(names, idx.value))
    vars_ = top["variables"]
    vnames = vars_.attr["names"].value
    rdb = open(rdb_path, "rb").read()
    out = {}
    for name, pos in zip(vnames, vars_.value):
        off, length = int(pos.value[0]), int(pos.value[1])
        out[name] = unserialize(_decompress_block(rdb[off:off + length]))
    return out


if __name__ == "__main__":
    import sys
    d = read_lazyload(sys.argv[1], sys.argv[2])
    for k, v in d.items():
        print(k, v, (v.value[:5] if isinstance(v.value, list) else ""))
