/* adapter_internal: what adapter_config.c (adapter_config.json) and adapter.c (the weights) share:
 * module names and the PCRE2 regexes PEFT's patterns become. Not for use outside src/lora/adapter*.c. */
#ifndef VLLMC_LORA_ADAPTER_INTERNAL_H
#define VLLMC_LORA_ADAPTER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>

#include "lora/adapter.h"

#define LORA_MAX_NAME 128 /* bytes of "model.layers.{i}.self_attn.gate_proj" and NUL, with room */
#define LORA_MODULE_LIST "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"

/* "self_attn" or "mlp": the submodule of a decoder layer that holds module m. */
const char *lora_module_parent(int m);
/* "model.layers.{layer}.self_attn.q_proj": the name PEFT matches patterns against. */
void lora_module_path(char *buf, size_t cap, int layer, int m);

/* A compiled pattern with its match data and limits (every match is bounded). */
typedef struct {
    pcre2_code *re;
    pcre2_match_data *md;
    pcre2_match_context *mc;
} lora_re;

/* Compile `pat` (UTF, UCP, as Python's str patterns); `field` says where it came from, for errors. */
int lora_re_compile(lora_re *r, const char *pat, const char *what, const char *field);
/* rank_pattern / alpha_pattern key K -> PEFT's re.match pattern (.*\.)?(K)$ */
int lora_key_compile(lora_re *r, const char *key, const char *what, const char *field);
/* Match at the start of s (re.match); with PCRE2_ENDANCHORED in opts, to its end too (re.fullmatch).
 * 1 match, 0 none, negative: the match gave up (a limit), with the error recorded. */
int lora_re_match(const lora_re *r, const char *s, uint32_t opts, const char *what, const char *field);
/* Bits of the modules that r full-matches in some layer below n_layers. */
int lora_regex_mask(const lora_re *r, int n_layers, const char *what, unsigned *mask);
void lora_re_free(lora_re *r); /* safe on a zeroed lora_re */

#endif
