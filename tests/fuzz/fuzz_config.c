/* fuzz_config: cfg_parse over arbitrary bytes, then the same bytes merged as a
 * generation_config.json (into the parsed config, or a zeroed one), and the
 * bytes as a --dtype flag. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    model_config c;
    const char *text = (const char *)data;
    if (cfg_parse(text, size, "config.json", &c) == 0) {
        if (c.hidden_size <= 0 || c.head_dim <= 0 || c.head_dim % 2 || c.n_kv_heads <= 0 ||
            c.n_heads % c.n_kv_heads || c.n_eos < 0 || c.n_eos > CFG_MAX_EOS)
            abort();
    } else {
        memset(&c, 0, sizeof c);
    }
    if (cfg_parse_generation(text, size, "generation_config.json", &c) == 0) {
        if (c.n_eos < 0 || c.n_eos > CFG_MAX_EOS) abort();
    }
    char flag[32];
    size_t k = size < sizeof flag - 1 ? size : sizeof flag - 1;
    memcpy(flag, data, k);
    flag[k] = 0;
    int f = -1;
    if (cfg_parse_dtype_flag(flag, &f) == 0 && (f < -1 || f > BE_BF16)) abort();
    be_dtype dt = BE_F32;
    if (cfg_resolve_dtype(flag, BE_BF16, &dt) == 0 && dt != BE_F32 && dt != BE_F16 && dt != BE_BF16) abort();
    return 0;
}
