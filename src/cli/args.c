#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("vllmc: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_flag(cli_args *a, const char *name) {
    const char *s = a->argv[a->i];
    size_t n = strlen(name);
    if (strncmp(s, name, n) != 0) return 0;
    if (s[n] == 0) {
        a->inline_val = NULL;
    } else if (s[n] == '=') {
        a->inline_val = s + n + 1;
    } else {
        return 0;
    }
    a->i++;
    return 1;
}

const char *cli_value(cli_args *a, const char *name) {
    if (a->inline_val) {
        const char *v = a->inline_val;
        a->inline_val = NULL;
        return v;
    }
    if (a->i >= a->argc) {
        cli_error("%s needs a value", name);
        return NULL;
    }
    return a->argv[a->i++];
}

int cli_parse_int(const char *s, const char *name, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cli_error("%s: expected an integer in [%lld, %lld], got '%s'", name, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, const char *name, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) {
        cli_error("%s: expected a number, got '%s'", name, s);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_ids(const char *s, int32_t **ids, int *n) {
    *ids = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *v = malloc(sizeof *v * cap);
    if (!v) return -1;
    const char *p = s;
    int k = 0;
    for (;;) {
        char *end;
        errno = 0;
        long long x = strtoll(p, &end, 10);
        if (errno || end == p || x < 0 || x > INT32_MAX) {
            cli_error("--prompt-token-ids: expected comma-separated non-negative token ids, got '%s'", s);
            free(v);
            return -1;
        }
        v[k++] = (int32_t)x;
        while (*end == ' ') end++;
        if (*end == 0) break;
        if (*end != ',') {
            cli_error("--prompt-token-ids: expected comma-separated non-negative token ids, got '%s'", s);
            free(v);
            return -1;
        }
        p = end + 1;
    }
    *ids = v;
    *n = k;
    return 0;
}

#include "base/err.h"
#include "stack.h"

int cli_stack_flag(cli_args *a, stk_params *p) {
    static const char *const names[] = {"--dtype", "--device", "--kv-cache-dtype", "--revision", "--download-dir"};
    const char **dst[] = {&p->dtype, &p->device, &p->kv_cache_dtype, &p->revision, &p->download_dir};
    for (int k = 0; k < (int)(sizeof names / sizeof *names); k++)
        if (cli_flag(a, names[k])) return (*dst[k] = cli_value(a, names[k])) ? 1 : -1;
    if (cli_flag(a, "--gpu-memory-utilization")) {
        const char *v = cli_value(a, "--gpu-memory-utilization");
        double f;
        if (!v || cli_parse_float(v, "--gpu-memory-utilization", &f)) return -1;
        if (!(f > 0 && f <= 1)) {
            cli_error("--gpu-memory-utilization: expected a fraction in (0, 1], got '%s'", v);
            return -1;
        }
        p->ec.gpu_memory_utilization = f;
        return 1;
    }
    return 0;
}

int cli_stack_check(stk_params *p) {
    if (stk_check(p)) {
        cli_error("%s", vc_errmsg());
        return -1;
    }
    return 0;
}

const char *cli_suggest(const char *flag, const char *const *known, int n) {
    const char *best = NULL;
    size_t fl = strlen(flag), bd = (size_t)-1;
    const char *eq = strchr(flag, '=');
    if (eq) fl = (size_t)(eq - flag);
    for (int k = 0; k < n; k++) {
        size_t kl = strlen(known[k]);
        if (kl > 63 || fl > 63) continue;
        size_t d[64][64];
        for (size_t i = 0; i <= fl; i++) d[i][0] = i;
        for (size_t j = 0; j <= kl; j++) d[0][j] = j;
        for (size_t i = 1; i <= fl; i++)
            for (size_t j = 1; j <= kl; j++) {
                size_t c = d[i - 1][j - 1] + (flag[i - 1] != known[k][j - 1]);
                if (d[i - 1][j] + 1 < c) c = d[i - 1][j] + 1;
                if (d[i][j - 1] + 1 < c) c = d[i][j - 1] + 1;
                d[i][j] = c;
            }
        if (d[fl][kl] < bd) {
            bd = d[fl][kl];
            best = known[k];
        }
    }
    return best && bd * 3 <= fl + 2 ? best : NULL;
}

static int has_config(const char *dir) {
    char p[4200];
    snprintf(p, sizeof p, "%s/config.json", dir);
    return access(p, R_OK) == 0;
}

const char *cli_demo_model(char *buf, size_t cap) {
    const char *env = getenv("VLLMC_DEMO_MODEL");
    if (env && *env) {
        snprintf(buf, cap, "%s", env);
        return has_config(buf) ? buf : NULL;
    }
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, cap, "%s/../models/demo", exe);
            if (has_config(buf)) return buf;
        }
    }
    snprintf(buf, cap, "models/demo");
    return has_config(buf) ? buf : NULL;
}
