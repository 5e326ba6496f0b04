/* compile: the text front ends of the grammar engine (grammar.h): a regular
 * expression, a GBNF grammar, a choice list -> a grammar. JSON Schema comes on
 * top of these (gram_regex_rule serves its `pattern`).
 *
 * Every compile is bounded by its builder's element limit and by max_repeat
 * (the largest {m,n} bound accepted), so hostile input fails with an error,
 * never a hang or a huge allocation. Errors are VC_EINVAL with a message that
 * names the problem and the byte offset ("regex: unbalanced ')' at 7"). */
#ifndef VLLMC_GRAMMAR_COMPILE_H
#define VLLMC_GRAMMAR_COMPILE_H

#include <stddef.h>

#include "grammar/grammar.h"

typedef struct {
    size_t max_elems; /* builder elements in all; 0: 1,000,000 */
    int max_repeat;   /* largest m or n in {m,n}; 0: 1,000 */
} gram_limits;

/* A regular expression in the syntax users send (JavaScript / Python re): literals and escapes
 * (\n \t \r \f \v \0 \xHH \uHHHH \u{H..} \d \D \w \W \s \S \. and escaped punctuation), classes
 * [...] with ranges and negation and the shorthand escapes inside, '.', groups (...) (?:...) and
 * named groups (?P<n>...) (?<n>...), alternation |, repetition * + ? {m} {m,} {m,n} and their lazy
 * forms (laziness does not change the language), anchors ^ and $ at the ends of the pattern. The whole
 * output must match (vLLM's guided_regex is a full match). '.' matches any code point but '\n'.
 * Unsupported (an error naming it): backreferences, lookaround, possessive quantifiers, flags. */
int gram_from_regex(const char *re, size_t n, const gram_limits *lim, gram_grammar **out);
/* The same into an existing builder: *rule is the new rule matching the regex (for JSON Schema).
 * It starts alternatives of rules of its own, so call it before (or between) the caller's own
 * gram_alt/gram_add_* runs, never in the middle of one. max_repeat 0: 1,000. The pattern's
 * expansion (bounded repeats multiplied out) is bounded by 1,000,000 elements. */
int gram_regex_rule(gram_builder *b, const char *re, size_t n, int max_repeat, int *rule);

/* A GBNF grammar as vLLM passes it to its grammar backends (llama.cpp's GBNF): rules `name ::= expr`,
 * `root` the start; expressions of "strings" with escapes, [classes] and [^negated] with ranges and
 * escapes, rule references, ( groups ), alternation |, * + ? and {m} {m,} {m,n}; comments '#' to end of
 * line; rules may span lines. An undefined rule or no `root` is an error naming it. */
int gram_from_gbnf(const char *src, size_t n, const gram_limits *lim, gram_grammar **out);

/* Exactly one of the n strings (vLLM's guided_choice). */
int gram_from_choice(const char *const *choice, const size_t *len, int n, gram_grammar **out);

/* ---- helpers the front ends share (defined in regex.c) ---- */

/* The length (1-4) of the valid UTF-8 sequence at s (n bytes available) with its code point in *cp;
 * 0 when it is not valid UTF-8 (truncated, overlong, a surrogate, past U+10FFFF). */
int gram_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* The UTF-8 bytes of cp (at most U+10FFFF, not a surrogate) into out; returns their count. */
int gram_utf8_encode(uint32_t cp, unsigned char out[4]);
/* Sort and merge n inclusive code-point ranges in place; returns the new count. */
int gram_ranges_normalize(uint32_t (*r)[2], int n);

#endif
