/* Fuzz target: sampling parameters from untrusted JSON (a --prompts-file line,
 * later an HTTP request body): parse, validate, copy, build the logits
 * processors and run them once over a small vocabulary. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/logits_proc.h"
#include "engine/params_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cJSON *o = cJSON_ParseWithLength((const char *)data, size);
    if (!o) return 0;
    eng_sampling_params p, q;
    eng_params_default(&p);
    memset(&q, 0, sizeof q);
    enum { V = 64 };
    if (eng_params_from_json(o, &p) == 0 && eng_params_validate(&p, V) == 0 && eng_params_copy(&q, &p) == 0) {
        eng_params_normalize(&q);
        lp_state st;
        int32_t prompt[3] = {1, 2, 3}, eos[1] = {2}, out[4] = {5, 6, 5, 7};
        if (lp_state_init(&st, &q, V, eos, 1, prompt, 3) == 0) {
            float logits[V];
            for (int i = 0; i < V; i++) logits[i] = (float)(i % 7) - 3.0f;
            lp_apply(&st, out, 4, logits);
            lp_state_free(&st);
        }
    }
    eng_params_free(&q);
    eng_params_free(&p);
    cJSON_Delete(o);
    return 0;
}
