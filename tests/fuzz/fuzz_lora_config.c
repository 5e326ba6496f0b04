/* fuzz_lora_config: lora_config_parse over arbitrary bytes (adapter_config.json), checking the
 * invariants of what it accepts; a failed parse must leave the config zeroed. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lora/adapter.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_ok(const lora_config *c) {
    if (c->r < 1 || !(c->lora_alpha > 0) || !isfinite(c->lora_alpha)) abort();
    if (c->target_mask >> LORA_N_MODULES) abort();
    if (!c->target_regex && !c->target_mask) abort(); /* the list form names at least one module */
    if (c->n_rank_pat < 0 || c->n_rank_pat > LORA_MAX_PATTERNS) abort();
    if (c->n_alpha_pat < 0 || c->n_alpha_pat > LORA_MAX_PATTERNS) abort();
    for (int i = 0; i < c->n_rank_pat; i++)
        if (!c->rank_key[i] || c->rank_val[i] < 1) abort();
    for (int i = 0; i < c->n_alpha_pat; i++)
        if (!c->alpha_key[i] || !(c->alpha_val[i] > 0) || !isfinite(c->alpha_val[i])) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lora_config c;
    if (lora_config_parse((const char *)data, size, "adapter_config.json", &c) == 0) {
        check_ok(&c);
    } else {
        static const lora_config zero;
        if (memcmp(&c, &zero, sizeof c)) abort();
    }
    lora_config_free(&c);
    return 0;
}
