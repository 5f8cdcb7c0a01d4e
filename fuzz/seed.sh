#!/usr/bin/env bash
# seed.sh [CORPUS_DIR]
# Fills fuzz/corpus/<target>/ from the real configs (default: ../testdata/corpus/real):
#   frontend: whole files
#   lexer:    every distinct line
#   cond:     every .if/.elif condition, every file's dot-directive lines as one input,
#             and a few hand-written conditions for each predicate.
# Seeds are named by their SHA-1, so running it twice adds nothing. fuzz/corpus is git-ignored.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=${1:-$here/../testdata/corpus/real}
out=$here/corpus
mkdir -p "$out/frontend" "$out/lexer" "$out/cond"

# put TARGET < data: stores stdin under its hash.
put() {
  local tmp h
  tmp=$(mktemp)
  cat > "$tmp"
  h=$(sha1sum < "$tmp" | cut -c1-40)
  mv "$tmp" "$out/$1/$h"
}

shopt -s nullglob
for cfg in "$src"/*.cfg; do
  put frontend < "$cfg"
  # Dot-directive lines only, in order: drives CondStack.
  if grep -qE '^[[:space:]]*\.' "$cfg"; then
    grep -E '^[[:space:]]*\.' "$cfg" | sed -E 's/^[[:space:]]+//' | put cond
  fi
done

# One line per seed (deduplicated).
cat "$src"/*.cfg | LC_ALL=C sort -u | while IFS= read -r line; do
  [ -n "$line" ] && printf '%s\n' "$line" | put lexer
done

# Conditions: the words after .if/.elif.
cat "$src"/*.cfg | LC_ALL=C sed -n -E 's/^[[:space:]]*\.(if|elif)[[:space:]]+//p' | LC_ALL=C sort -u |
  while IFS= read -r c; do printf '%s\n' "$c" | put cond; done

while IFS= read -r c; do printf '%s\n' "$c" | put cond; done <<'CONDS'
defined(HOST)
!defined(NOPE) && feature(OPENSSL)
streq("$SCHEME",https) || strneq(a,b)
strstr(abc,b)
version_atleast(2.6) && version_before(3.0-dev)
openssl_version_atleast(3.0.0) && openssl_version_before(4.0.0)
ssllib_name_startswith(OpenSSL)
awslc_api_atleast(1) || awslc_api_before(2)
enabled(POLL) && !enabled(NOPE)
(1 && (0 || !0)) || ""
1 &&
streq(
.if 1
.if 0
.elif defined(X)
.else
.endif
.endif
.notice "hi"
.warning "w"
.diag d
.alert "stop"
CONDS

printf 'seed.sh: frontend=%s lexer=%s cond=%s\n' \
  "$(ls "$out/frontend" | wc -l)" "$(ls "$out/lexer" | wc -l)" "$(ls "$out/cond" | wc -l)" >&2
