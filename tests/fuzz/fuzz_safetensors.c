/* fuzz_safetensors: st_parse over arbitrary bytes, then the same bytes as a
 * model.safetensors.index.json text. Every tensor st_parse returns is read in
 * full, so ASan catches any offset or size check that lets one out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    st_tensor *t = NULL;
    int n = 0;
    if (st_parse(data, size, "fuzz.safetensors", &t, &n) == 0) {
        volatile unsigned char sink = 0;
        for (int i = 0; i < n; i++) {
            const unsigned char *p = t[i].data;
            if (t[i].nbytes != 0 && (p < data || p + t[i].nbytes > data + size)) abort();
            for (size_t k = 0; k < t[i].nbytes; k++) sink ^= p[k];
            if (i > 0 && strcmp(t[i - 1].name, t[i].name) >= 0) abort(); /* sorted, unique */
        }
        (void)sink;
        st_tensors_free(t, n);
    }
    char **files = NULL;
    int nf = 0;
    if (st_parse_index((const char *)data, size, "fuzz.index.json", &files, &nf) == 0) {
        for (int i = 0; i < nf; i++) {
            if (!files[i][0] || strchr(files[i], '/') || strstr(files[i], "..")) abort();
            free(files[i]);
        }
        free(files);
    }
    return 0;
}
