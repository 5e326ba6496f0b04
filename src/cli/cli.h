/* cli: the subcommands of the vllmc program and the argument helpers they share.
 * Each subcommand returns the process exit status; errors go to stderr. */
#ifndef VLLMC_CLI_H
#define VLLMC_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "stack.h"

int cli_serve(int argc, char **argv);
int cli_generate(int argc, char **argv);
int cli_bench(int argc, char **argv);
int cli_bench_serve(int argc, char **argv); /* bench_serve.c: vLLM's `bench serve` over HTTP */
int cli_bench_structured(int argc, char **argv); /* bench_structured.c: structured output's costs */

/* Argument cursor over argv[i]: accepts "--name value" and "--name=value". */
typedef struct {
    int argc, i;
    char **argv;
    const char *inline_val; /* value after '=' of the current flag, if any */
} cli_args;

/* If argv[i] is --name (or --name=...), consume it and return 1. */
int cli_flag(cli_args *a, const char *name);
/* The value of the flag just matched (consumes the next argv), or NULL with a message. */
const char *cli_value(cli_args *a, const char *name);
int cli_parse_int(const char *s, const char *name, long long lo, long long hi, long long *out);

/* In an option loop over cli_args `a` with locals `const char *v` and `long long iv`: take
 * --name VALUE into `field` (an integer in [lo, hi], or the string) and continue; return 2 on a
 * bad or missing value. */
#define CLI_INT_FLAG(name, field, lo, hi)                                                \
    if (cli_flag(&a, name)) {                                                            \
        if (!(v = cli_value(&a, name)) || cli_parse_int(v, name, lo, hi, &iv)) return 2; \
        field = iv;                                                                      \
        continue;                                                                        \
    }
#define CLI_STR_FLAG(name, field)                     \
    if (cli_flag(&a, name)) {                         \
        if (!(field = cli_value(&a, name))) return 2; \
        continue;                                     \
    }
int cli_parse_float(const char *s, const char *name, double *out);
/* "1,5,9" -> malloc'd ids. */
int cli_parse_ids(const char *s, int32_t **ids, int *n);
void cli_error(const char *fmt, ...);
/* The known flag closest to `flag` (edit distance, at most a third of its
 * length), or NULL: for "did you mean" messages. */
const char *cli_suggest(const char *flag, const char *const *known, int n);

/* The bundled demo model folder: $VLLMC_DEMO_MODEL, else models/demo beside the
 * folder holding the vllmc binary (build/vllmc -> models/demo), else ./models/demo.
 * Returns buf, or NULL when none has a config.json. */
const char *cli_demo_model(char *buf, size_t cap);

/* The model-stack flags serve, generate and bench share: --dtype, --device, --kv-cache-dtype,
 * --gpu-memory-utilization, --revision, --download-dir, into p. Returns 1 when argv[a->i] was one
 * of them (consumed), 0 when not, -1 on a missing or bad value (message printed). */
int cli_stack_flag(cli_args *a, stk_params *p);
/* stk_check with the message printed: every flag checked before a download. */
int cli_stack_check(stk_params *p);

#endif
