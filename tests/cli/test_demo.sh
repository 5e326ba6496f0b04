#!/usr/bin/env bash
# The bundled demo model (models/demo, issue #6): it loads, its chat template renders, and it writes
# English: at temperature 0.7, at least 75% of the words it writes are dictionary words
# (/usr/share/dict/words from Debian's wamerican, installed by ./test.sh). Words are maximal runs of
# letters, lowercased; a word counts if it, or it without a trailing "'s", is in the dictionary.
set -uo pipefail
V=${VLLMC:-build/vllmc}
M=models/demo
DICT=/usr/share/dict/words
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

[ -f "$M/config.json" ] || { echo "  FAIL: $M is missing" >&2; exit 1; }
[ -f "$DICT" ] || { echo "  FAIL: $DICT is missing: run ./test.sh (installs wamerican)" >&2; exit 1; }

# 8 prompts x 120 tokens at temperature 0.7 (seeded: the same text every run)
prompts=("Once upon a time" "The old man walked" "It was a dark and stormy night" "She opened the door and"
         "In the morning, the village" "He said that" "The ship sailed" "When the king heard")
: >"$tmp/p.jsonl"
for i in "${!prompts[@]}"; do
  printf '{"prompt": "%s", "max_tokens": 120, "temperature": 0.7, "seed": %d}\n' "${prompts[$i]}" "$i" >>"$tmp/p.jsonl"
done
if "$V" generate "$M" --prompts-file "$tmp/p.jsonl" --json >"$tmp/out" 2>"$tmp/err"; then
  ok "generate: $(wc -l <"$tmp/out") completions"
else
  bad "generate failed: $(tail -c 400 "$tmp/err")"
  exit 1
fi
node -e '
const fs = require("fs");
const dict = new Set(fs.readFileSync(process.argv[1], "utf8").split("\n").map((w) => w.trim().toLowerCase()));
let total = 0, known = 0;
const unknown = new Map();
for (const line of fs.readFileSync(process.argv[2], "utf8").split("\n").filter(Boolean)) {
  const text = JSON.parse(line).text;
  for (const m of text.matchAll(/[A-Za-z]+(?:'"'"'[A-Za-z]+)?/g)) {
    const w = m[0].toLowerCase();
    total++;
    if (dict.has(w) || dict.has(w.replace(/'"'"'s$/, ""))) known++;
    else unknown.set(w, (unknown.get(w) || 0) + 1);
  }
}
const frac = total ? known / total : 0;
console.log(`${known} of ${total} words in the dictionary: ${(100 * frac).toFixed(1)}%; not: ${[...unknown.keys()].slice(0, 12).join(" ")}`);
process.exit(total >= 300 && frac >= 0.75 ? 0 : 1);
' "$DICT" "$tmp/out" >"$tmp/words" 2>&1 && ok "dictionary words: $(cat "$tmp/words")" || bad "dictionary words: $(cat "$tmp/words")"
echo "  sample: $(head -1 "$tmp/out" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.stringify(JSON.parse(s).text.slice(0,200))))')"

# the chat template renders
echo '[{"role": "user", "content": "Tell me a story about a dog."}]' >"$tmp/m.json"
if "$V" chat-template "$M" --messages "$tmp/m.json" --add-generation-prompt >"$tmp/chat" 2>"$tmp/err"; then
  ok "chat template renders ($(wc -c <"$tmp/chat") bytes)"
else
  bad "chat template: $(cat "$tmp/err")"
fi
exit $fail
