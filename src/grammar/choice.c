/* choice: vLLM's guided_choice -> a grammar of one rule with one alternative per string (the bytes
 * as given; duplicates and the empty string are allowed). */
#include <string.h>

#include "base/err.h"
#include "grammar/compile.h"

int gram_from_choice(const char *const *choice, const size_t *len, int n, gram_grammar **out) {
    if (!out) return vc_errf(VC_EINVAL, "choice: bad arguments");
    *out = NULL;
    if (n <= 0 || !choice || !len) return vc_errf(VC_EINVAL, "choice: the list of choices is empty");
    gram_builder *b = NULL;
    int r, rc = gram_builder_new(0, &b);
    if (rc) goto out;
    if ((r = gram_rule(b, "choice")) < 0) {
        rc = r;
        goto out;
    }
    for (int i = 0; i < n; i++) {
        if (!choice[i] && len[i]) {
            rc = vc_errf(VC_EINVAL, "choice: choice %d is NULL", i);
            goto out;
        }
        if ((rc = gram_alt(b, r)) || (len[i] && (rc = gram_add_bytes(b, choice[i], len[i])))) goto out;
    }
    rc = gram_build(b, r, out);
out:
    gram_builder_free(b);
    if (rc && rc != VC_ENOMEM && rc != VC_EINVAL) return rc;
    if (rc == VC_EINVAL && strncmp(vc_errmsg(), "choice", 6) != 0) return vc_err_prefix(rc, "choice");
    return rc;
}
