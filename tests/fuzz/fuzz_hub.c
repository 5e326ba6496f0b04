/* Fuzz target: the Hub's model-info answer (GET /api/models/ORG/NAME/revision/REV),
 * which comes from the network: parse it and pick the files to download. Every
 * name that comes back must be safe to use as a path below the snapshot. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hub/hub.h"

/* A path component "." or ".." anywhere, or an absolute path. */
static int unsafe(const char *f) {
    if (!*f || f[0] == '/') return 1;
    for (const char *p = f; *p;) {
        const char *e = strchr(p, '/');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if ((l == 1 && p[0] == '.') || (l == 2 && p[0] == '.' && p[1] == '.') || l == 0) return 1;
        p += l + (e ? 1 : 0);
        if (e && !*p) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char commit[41];
    char **files = NULL;
    int n = 0;
    if (hub_parse_info((const char *)data, size, "http://fuzz/api/models/a/b/revision/main", commit, &files, &n) == 0) {
        if (strlen(commit) != 40) abort();
        for (int i = 0; i < n; i++) {
            const char *f = files[i];
            if (!f || unsafe(f)) abort();
            free(files[i]);
        }
        free(files);
    }
    return 0;
}
