/* structured: structured-output request fields -> a cached, compiled grammar (see structured.h).
 * The reading, compiling and caching are grammar/spec.c's; this file words its errors as the
 * HTTP errors vLLM answers. */
#include "server/structured.h"

#include <stdlib.h>

#include "base/err.h"
#include "grammar/spec.h"

/* The server's cache is the grammar module's, under the server's name. */
struct so_cache {
    gram_spec_cache *c;
};

int so_cache_new(int capacity, so_cache **out) {
    so_cache *c = calloc(1, sizeof *c);
    if (!c) return vc_errf(VC_ENOMEM, "out of memory");
    int rc = gram_spec_cache_new(capacity, &c->c);
    if (rc) {
        free(c);
        return rc;
    }
    *out = c;
    return VC_OK;
}

void so_cache_free(so_cache *c) {
    if (!c) return;
    gram_spec_cache_free(c->c);
    free(c);
}

/* A spec error as the server answers it: 500 for memory, a wrong field shape as FastAPI's 400
 * ("Bad Request"), a refused value as vLLM's handler's 400 ("BadRequestError"). */
static int to_srv(const gram_spec_error *e, srv_error *err) {
    if (e->code == VC_ENOMEM) return srv_fail(err, 500, NULL, "out of memory");
    if (e->shape) return srv_fail_parse(err, e->field, "%s", e->message);
    return srv_fail(err, 400, e->field, "%s", e->message);
}

int so_from_request(so_cache *c, const cJSON *body, gram_grammar **g, srv_error *err) {
    *g = NULL;
    gram_spec s;
    gram_spec_error e;
    if (gram_spec_read(body, &s, &e)) return to_srv(&e, err);
    if (s.kind == GRAM_SPEC_NONE) return 0;
    if (gram_spec_compile(c ? c->c : NULL, &s, g, &e)) return to_srv(&e, err);
    return 0;
}
