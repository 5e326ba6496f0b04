/* Fuzz target: what `vllmc bench serve` reads from the network: a chunked
 * body fed in pieces of every size the input picks (the decoder is resumable),
 * and a --base-url. The first byte chooses the piece size; a data span must
 * lie inside the piece given, and the decoder must end or fail, never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/http_client.h"

typedef struct {
    const char *lo, *hi;
    size_t total;
} span_check;

static int on_data(void *ctx, const char *p, size_t n) {
    span_check *c = ctx;
    if (p < c->lo || p + n > c->hi) abort(); /* a span outside the bytes fed */
    c->total += n;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t piece = (size_t)(data[0] % 16) + 1;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    hc_dechunk d = {0};
    span_check c = {0};
    for (size_t off = 0; off < n;) {
        size_t k = n - off < piece ? n - off : piece, used = 0;
        c.lo = p + off;
        c.hi = p + off + k;
        int rc = hc_dechunk_feed(&d, p + off, k, &used, on_data, &c);
        if (rc || d.state == HC_CH_DONE) break;
        if (used != k) abort(); /* only an ended body leaves bytes unused */
        off += k;
    }
    if (c.total > n) abort();
    char url[512];
    size_t ul = n < sizeof url - 1 ? n : sizeof url - 1;
    memcpy(url, p, ul);
    url[ul] = 0;
    hc_url u;
    hc_url_parse(url, &u);
    return 0;
}
