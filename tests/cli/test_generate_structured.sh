#!/usr/bin/env bash
# Structured output in `vllmc generate` (issue #13, step 7): --json-schema, --regex, --choice,
# --grammar, --json-object, --disable-any-whitespace, and a --prompts-file line's own constraint
# (the server's fields). On the random-weight chat model of tests/fixtures/make_chat_model.sh, at
# several seeds and temperatures, every output that ends with "stop" must satisfy its constraint,
# as judged by tests/js/generate_structured_check.mjs (ajv, JavaScript RegExp, equality); bad
# constraints are usage errors (exit 2) naming the flag, or the file and line. Needs node and
# tests/js/node_modules (./test.sh, or 'cd tests/js && npm ci').
set -uo pipefail
V=${VLLMC:-build/vllmc}
CHECK=tests/js/generate_structured_check.mjs
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

if ! command -v node >/dev/null; then echo "  FAIL: node is not installed" >&2; exit 1; fi
if [ ! -f tests/js/node_modules/ajv/package.json ] || [ ! -f tests/js/node_modules/ajv-formats/package.json ]; then
  echo "  FAIL: tests/js/node_modules lacks ajv / ajv-formats: run ./test.sh or 'cd tests/js && npm ci'" >&2
  exit 1
fi
tests/fixtures/make_chat_model.sh "$tmp/m" || { echo "  FAIL: make_chat_model.sh" >&2; exit 1; }
M=$tmp/m

# bounded constraints (the ones tests/js/server_structured.mjs uses): a random model ends inside them
cat >"$tmp/person.json" <<'J'
{"type": "object",
 "properties": {"age": {"type": "integer", "minimum": 0, "maximum": 120}, "ok": {"type": "boolean"},
                "color": {"enum": ["red", "green", "blue"]}, "tag": {"type": "string", "maxLength": 4},
                "day": {"type": "string", "format": "date"},
                "list": {"type": "array", "items": {"type": "integer", "minimum": -5, "maximum": 5}, "maxItems": 3}},
 "required": ["age", "ok", "color", "tag", "day", "list"], "additionalProperties": false}
J
REGEX='[a-z]{2,5}@[a-z]{2,4}\.(com|org)'
printf 'root ::= "(" num ("," num)? ")"\nnum ::= [0-9] [0-9]? # one or two digits\n' >"$tmp/g.gbnf"
GBNF_RE='\((\d\d?)(,\d\d?)?\)'
# the judges (tests/js/generate_structured_check.mjs PLAN)
node -e '
const fs = require("fs"), [dir, re, gre] = process.argv.slice(1);
const schema = JSON.parse(fs.readFileSync(dir + "/person.json", "utf8"));
const w = (n, j) => fs.writeFileSync(`${dir}/${n}.plan`, JSON.stringify(j));
w("schema", { schema }); w("compact", { schema, compact: true }); w("object", { object: true });
w("regex", { regex: re }); w("grammar", { regex: gre }); w("choice", { choice: ["yes", "no", "maybe, later", "a\\b"] });
' "$tmp" "$REGEX" "$GBNF_RE" || { echo "  FAIL: writing the judges" >&2; exit 1; }

# run NAME PLAN ARGS...: generate (two prompts, so the constraint must reach every one) at each
# sampling setting, every output judged
run() {
  local name=$1 plan=$2; shift 2
  local s t seed n stops=0 lengths=0
  for s in 1.0:1 1.5:2 0.7:3 0:4; do
    t=${s%:*} seed=${s#*:} n=3
    [ "$t" = 0 ] && n=1
    if ! "$V" generate "$M" --prompt "data:" --prompt "give me" --max-tokens 200 --temperature "$t" --seed "$seed" \
         --n "$n" "$@" --json >"$tmp/out" 2>"$tmp/err"; then
      bad "$name T=$t: exit $?: $(grep -v '^INFO' "$tmp/err" | head -c 300)"; return
    fi
    if ! node "$CHECK" "$tmp/$plan.plan" <"$tmp/out" >"$tmp/chk" 2>&1; then
      bad "$name T=$t seed $seed: $(head -c 400 "$tmp/chk")"; return
    fi
    stops=$((stops + $(awk '{print $1}' "$tmp/chk"))) lengths=$((lengths + $(awk '{print $9}' "$tmp/chk")))
  done
  ok "$name: valid at 4 seeds/temperatures ($stops outputs ended with stop and were valid, $lengths hit max_tokens)"
}
run "--json-schema" schema --json-schema "$tmp/person.json"
run "--json-schema --disable-any-whitespace" compact --json-schema "$tmp/person.json" --disable-any-whitespace
run "--json-object" object --json-object
run "--regex" regex --regex "$REGEX"
run "--choice (with \\, and \\\\)" choice --choice 'yes,no,maybe\, later,a\\b'
run "--grammar (GBNF)" grammar --grammar "$tmp/g.gbnf"

# --choice escapes: a single choice is the whole output
o=$("$V" generate "$M" --prompt x --choice 'x\,y' --prompt-token-ids 1 --json 2>/dev/null)
[ "$(echo "$o" | grep -c '"text":"x,y","logprobs":null,"finish_reason":"stop"')" = 2 ] && ok "--choice 'x\,y': x,y" \
  || bad "--choice 'x\,y': $o"
o=$("$V" generate "$M" --prompt x --choice 'p\\q' --json 2>/dev/null)
echo "$o" | grep -qF '"text":"p\\q","logprobs":null,"finish_reason":"stop"' && ok '--choice p\\q: p\q' || bad "--choice p\\\\q: $o"

# --- a --prompts-file line's own constraint replaces the command line's ---
node -e '
const fs = require("fs"), [dir, re] = process.argv.slice(1);
const schema = JSON.parse(fs.readFileSync(dir + "/person.json", "utf8"));
const gbnf = fs.readFileSync(dir + "/g.gbnf", "utf8");
const lines = [
  [{ prompt: "a" }, { regex: re }],                                                   // the command line regex
  [{ prompt: "b", structured_outputs: { choice: ["up", "down"] } }, { choice: ["up", "down"] }],
  [{ prompt: "c", guided_json: JSON.stringify(schema) }, { schema }],
  [{ prompt: "d", response_format: { type: "json_schema", json_schema: { name: "p", schema, strict: true } } }, { schema }],
  [{ prompt: "e", response_format: { type: "json_object" } }, { object: true }],
  [{ prompt: "f", guided_grammar: gbnf }, { regex: "\\((\\d\\d?)(,\\d\\d?)?\\)" }],
  [{ prompt: "g", guided_choice: ["x", "y"], n: 3, temperature: 1.2 }, { choice: ["x", "y"] }],
  [{ prompt: "h", structured_outputs: { json: schema, disable_any_whitespace: true } }, { schema, compact: true }],
  [{ prompt: "i", response_format: { type: "text" }, max_tokens: 4 }, { none: true }],   // no constraint at all
  [{ prompt: "j", guided_choice: ["x", "y"] }, { choice: ["x", "y"] }],                  // the same, from the cache
];
fs.writeFileSync(dir + "/p.jsonl", lines.map((l) => JSON.stringify(l[0])).join("\n") + "\n");
fs.writeFileSync(dir + "/p.plan", JSON.stringify(lines.map((l) => l[1])));
' "$tmp" "$REGEX"
if "$V" generate "$M" --prompts-file "$tmp/p.jsonl" --regex "$REGEX" --max-tokens 200 --temperature 1 --seed 5 --json \
     >"$tmp/out" 2>"$tmp/err" && node "$CHECK" "$tmp/p.plan" <"$tmp/out" >"$tmp/chk" 2>&1; then
  ok "--prompts-file: each line's constraint (structured_outputs, response_format, guided_*) ($(cat "$tmp/chk"))"
else
  bad "--prompts-file constraints: $(grep -v '^INFO' "$tmp/err" | head -c 300) $(head -c 400 "$tmp/chk")"
fi
# response_format text really removes the command line's constraint: the same tokens as no constraint
a=$("$V" generate "$M" --prompt "q" --max-tokens 6 --ignore-eos --regex 'z+' --prompts-file <(echo '{"prompt": "q", "response_format": {"type": "text"}, "max_tokens": 6}') --json 2>/dev/null | sed -n 2p)
b=$("$V" generate "$M" --prompt "q" --max-tokens 6 --ignore-eos --json 2>/dev/null)
[ -n "$a" ] && [ "$a" = "$b" ] && ok "a line's response_format text: unconstrained" || bad "response_format text: '$a' vs '$b'"
# and the command line's constraint reached the --prompt line (only z's)
echo "$($V generate "$M" --prompt "q" --max-tokens 6 --ignore-eos --regex 'z+' --json 2>/dev/null)" | grep -q '"text":"z*"' \
  && ok "--regex 'z+' with --ignore-eos: only z" || bad "--regex z+: not only z"

# --- bad constraints: usage errors (exit 2) that name the flag or the file and line ---
# expect2 NAME PATTERN ARGS...: exit 2, stderr matching PATTERN, nothing on stdout
expect2() {
  local name=$1 pat=$2; shift 2
  "$V" generate "$M" --json --prompt x "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  local msg; msg=$(grep -v '^INFO' "$tmp/err" | head -c 200)
  if [ $rc -ne 2 ]; then bad "$name: exit $rc (want 2): $msg"; return; fi
  if ! grep -q -- "$pat" "$tmp/err"; then bad "$name: stderr lacks '$pat': $msg"; return; fi
  if [ -s "$tmp/out" ]; then bad "$name: wrote to stdout"; return; fi
  ok "$name ($msg)"
}
echo '{"type": "strnig"}' >"$tmp/badtype.json"
echo '{"type": ' >"$tmp/badjson.json"
echo '{"type": "integer", "minimum": 5, "maximum": 1}' >"$tmp/minmax.json"
echo 'root ::= missing' >"$tmp/bad.gbnf"
expect2 "two constraints" "at most one of --json-schema, --regex, --choice, --grammar, --json-object (got --regex and --choice)" \
  --regex a --choice b
expect2 "a constraint twice" "--json-object given twice" --json-object --json-object
expect2 "bad regex" "--regex: regex: unbalanced" --regex 'a(b'
expect2 "regex backreference" "--regex: regex:" --regex '(a)\1'
expect2 "regex too large" "--regex: regex: grammar too large" --regex '((a{1000}){1000}){1000}'
expect2 "--regex without a value" "--regex needs a value" --regex
expect2 "schema file missing" "--json-schema: $tmp/nope.json: cannot open" --json-schema "$tmp/nope.json"
expect2 "schema not JSON" "--json-schema $tmp/badjson.json: not valid JSON" --json-schema "$tmp/badjson.json"
expect2 "schema unknown type" "--json-schema $tmp/badtype.json: schema: unknown type 'strnig'" --json-schema "$tmp/badtype.json"
expect2 "schema minimum > maximum" "--json-schema $tmp/minmax.json: .*minimum" --json-schema "$tmp/minmax.json"
expect2 "grammar undefined rule" "--grammar $tmp/bad.gbnf: gbnf: undefined rule 'missing'" --grammar "$tmp/bad.gbnf"
expect2 "grammar file missing" "--grammar: $tmp/nope.gbnf: cannot open" --grammar "$tmp/nope.gbnf"
expect2 "grammar is a folder" "--grammar: $tmp" --grammar "$tmp"
printf 'root ::= "a"\0' >"$tmp/nul.gbnf"
expect2 "grammar with a NUL byte" "NUL byte" --grammar "$tmp/nul.gbnf"
expect2 "bad --choice escape" "backslash at byte 1 escapes neither" --choice 'a\b'
expect2 "--choice ending in a backslash" "backslash at byte 1" --choice 'a\'
expect2 "--disable-any-whitespace alone" "--disable-any-whitespace applies to --json-schema or --json-object" \
  --disable-any-whitespace
expect2 "--disable-any-whitespace with --regex" "applies to --json-schema" --regex a --disable-any-whitespace
# lines of --prompts-file: the file and line named, exit 2
bad_line() {
  local name=$1 pat=$2 line=$3
  printf '{"prompt": "x"}\n%s\n' "$line" >"$tmp/b.jsonl"
  expect2 "line: $name" "$tmp/b.jsonl:2: .*$pat" --prompts-file "$tmp/b.jsonl"
}
bad_line "bad regex" "guided_regex: regex: unbalanced" '{"prompt": "x", "guided_regex": "a("}'
bad_line "two constraints" "only use one kind" '{"prompt": "x", "structured_outputs": {"regex": "a", "choice": ["b"]}}'
bad_line "structured_outputs not an object" "'structured_outputs' must be an object" '{"prompt": "x", "structured_outputs": 5}'
bad_line "choices not strings" "the choices must be a list of strings" '{"prompt": "x", "guided_choice": [1]}'
bad_line "empty choices" "non-empty list" '{"prompt": "x", "guided_choice": []}'
bad_line "bad schema" "unknown type" '{"prompt": "x", "guided_json": {"type": "strnig"}}'
bad_line "schema string not JSON" "guided_json: the schema is not valid JSON" '{"prompt": "x", "guided_json": "{bad"}'
bad_line "bad response_format" "response_format type 'xml' is not supported" '{"prompt": "x", "response_format": {"type": "xml"}}'
bad_line "bad grammar" "guided_grammar: gbnf: undefined rule" '{"prompt": "x", "guided_grammar": "root ::= y"}'
bad_line "bad whitespace_pattern" "whitespace_pattern: regex: unbalanced" '{"prompt": "x", "structured_outputs": {"json": {}, "whitespace_pattern": "(a"}}'

# --help documents the flags
"$V" generate --help | grep -q -- "--json-schema FILE | --regex R | --choice A,B,... | --grammar FILE | --json-object" \
  && ok "--help lists the structured-output flags" || bad "--help lacks the structured-output flags"

exit $fail
