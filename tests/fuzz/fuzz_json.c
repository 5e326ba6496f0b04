/* fuzz_json: js_parse over arbitrary bytes. A tree it returns must print (cJSON_PrintUnformatted)
 * to text that js_parse reads back to the same tree, must hold no duplicate keys, and its numbers
 * and strings must survive js_int64, sb_jstr and js_unmask_nul. The comparison is our own: cJSON_Compare
 * takes time exponential in the depth of nested objects, and says inf != inf. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/sbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Same shape, order and keys; numbers as cJSON_Compare judges them (its print keeps 15 or 17
 * digits), infinities included. Depth is bounded by JS_MAX_DEPTH. */
static int same(const cJSON *a, const cJSON *b) {
    if (!a || !b || a->type != b->type) return a == b;
    if ((a->string || b->string) && (!a->string || !b->string || strcmp(a->string, b->string))) return 0;
    if (cJSON_IsNumber(a)) {
        double x = a->valuedouble, y = b->valuedouble, m = fmax(fabs(x), fabs(y));
        if (!(x == y || fabs(x - y) <= m * 2.220446049250313e-16)) return 0;
    }
    if (cJSON_IsString(a) && strcmp(a->valuestring, b->valuestring)) return 0;
    for (a = a->child, b = b->child; a || b; a = a->next, b = b->next)
        if (!same(a, b)) return 0;
    return 1;
}

/* Infinite numbers print as null: such trees cannot round-trip. Also checks the other helpers. */
static int check_items(cJSON *j) {
    int finite = 1;
    for (; j; j = j->next) {
        long long v;
        if (cJSON_IsNumber(j)) {
            if (isinf(j->valuedouble)) finite = 0;
            if (js_int64(j, &v) == 0 && j->valuedouble != (double)v) abort();
        }
        if (cJSON_IsString(j)) {
            sbuf s = {0};
            size_t n = strlen(j->valuestring);
            sb_jstr(&s, j->valuestring, n);
            cJSON *back = s.oom ? NULL : js_parse(s.b, s.n, NULL);
            if (!s.oom && (!back || strcmp(back->valuestring, j->valuestring))) abort();
            cJSON_Delete(back);
            sb_free(&s);
            char *c = strdup(j->valuestring);
            if (c && js_unmask_nul(c, n) > n) abort();
            free(c);
        }
        if (j->child && !check_items(j->child)) finite = 0;
    }
    return finite;
}

static int has_duplicates(const cJSON *o) {
    for (const cJSON *a = o->child; a; a = a->next) {
        if (a->child && has_duplicates(a)) return 1;
        if (!cJSON_IsObject(o)) continue;
        for (const cJSON *b = a->next; b; b = b->next)
            if (!strcmp(a->string, b->string)) return 1;
    }
    return 0;
}

/* cJSON prints U+0000 as the stored C0 80, which js_parse refuses as input: write \u0000 there
 * (C0 never occurs in valid UTF-8, so each C0 is such a pair). */
static char *escape_nuls(const char *t, size_t *len) {
    sbuf s = {0};
    for (const char *p = t; *p; p++) {
        if ((unsigned char)*p == 0xC0 && (unsigned char)p[1] == 0x80) sb_str(&s, "\\u0000"), p++;
        else sb_raw(&s, p, 1);
    }
    return sb_take(&s, len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    js_error e;
    cJSON *j = js_parse((const char *)data, size, &e);
    if (!j) {
        if (!e.message[0] || e.offset > size) abort();
        return 0;
    }
    if (size < 4096 && has_duplicates(j)) abort(); /* quadratic: small inputs only */
    if (check_items(j)) {
        char *txt = cJSON_PrintUnformatted(j), *esc = NULL;
        size_t n = 0;
        if (txt && (esc = escape_nuls(txt, &n))) {
            cJSON *back = js_parse(esc, n, &e);
            if (!back || !same(j, back)) abort();
            cJSON_Delete(back);
        }
        free(esc);
        free(txt);
    }
    cJSON_Delete(j);
    return 0;
}
