/* Shared by the config tests of the issue-15 families (test_config_family.c, test_config_moe.c,
 * test_config_gptoss.c): parse a config.json text, expect a refusal naming a field, read a published
 * config from bench/configs. Include after test.h. */
#ifndef VLLMC_TEST_CONFIG_UTIL_H
#define VLLMC_TEST_CONFIG_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/file.h"
#include "model/config.h"

static inline int P(const char *json, model_config *c) { return cfg_parse(json, strlen(json), "config.json", c); }

/* rc must be an error whose message holds a and b (either may be NULL) */
static inline void expect_err_at(int line, int rc, const char *a, const char *b) {
    const char *m = vc_errmsg();
    CHECK_MSG(rc != 0, "line %d: parsed, want an error", line);
    CHECK_MSG(!a || strstr(m, a), "line %d: message '%s' lacks '%s'", line, m, a);
    CHECK_MSG(!b || strstr(m, b), "line %d: message '%s' lacks '%s'", line, m, b);
}
#define EXPECT_ERR(rc, a, b) expect_err_at(__LINE__, rc, a, b)

/* bench/configs/<name>.json, parsed (run from the repository root) */
static inline int load_bench_config(const char *name, model_config *c) {
    char path[256], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof path, "bench/configs/%s.json", name);
    int rc = vc_read_file(path, 1 << 20, &text, &len);
    if (!rc) rc = cfg_parse(text, len, path, c);
    CHECK_MSG(rc == 0, "%s: %s", name, vc_errmsg());
    free(text);
    return rc;
}

#endif
