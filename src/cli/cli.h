/* cli: the subcommands of the vllmc program and the argument helpers they share.
 * Each subcommand returns the process exit status; errors go to stderr. */
#ifndef VLLMC_CLI_H
#define VLLMC_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "lora/registry.h"
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

/* vLLM's LoRA flags (lora_flags.c): --enable-lora, --max-loras (1), --max-lora-rank (16, one of vLLM's
 * choices), --max-cpu-loras (default --max-loras), and the adapters named on the command line
 * (serve's --lora-modules NAME=PATH|JSON..., generate's --lora NAME=PATH). */
typedef struct {
    char *name, *path;  /* malloc'd */
    char *base;         /* the JSON form's base_model_name, or NULL */
} cli_lora_module;

typedef struct {
    int enable;               /* --enable-lora */
    int max_loras;            /* --max-loras */
    int max_lora_rank;        /* --max-lora-rank */
    int max_cpu_loras;        /* --max-cpu-loras; cli_lora_check sets the default */
    int max_cpu_loras_given;
    cli_lora_module *mods;    /* [n_mods] in command-line order */
    int n_mods;
} cli_lora;

void cli_lora_init(cli_lora *l);
void cli_lora_free(cli_lora *l);
/* One LoRA flag at argv[a->i]: 1 consumed, 0 not a LoRA flag, -1 bad value (message printed).
 * modules_flag: the flag that names adapters ("--lora-modules": one or more values; any other name:
 * one value, repeatable), NULL: none. */
int cli_lora_flag(cli_args *a, cli_lora *l, const char *modules_flag);
/* Add one adapter given as NAME=PATH or {"name": ..., "path": ..., "base_model_name": ...}; -1 with a
 * message naming `flag` when it is neither. */
int cli_lora_add(cli_lora *l, const char *flag, const char *item);
/* Check the values as vLLM's LoRAConfig does (only with --enable-lora) and set ec->max_loras (0:
 * LoRA off) and ec->max_lora_rank. -1: message printed. */
int cli_lora_check(cli_lora *l, eng_config *ec);
/* With --enable-lora: the registry for the opened model, with every named adapter added (read and
 * checked now); *out NULL without --enable-lora. served: the served model names (an adapter's
 * base_model_name counts only when it is one of them, as in vLLM). -1: message printed (it names
 * the adapter and the file). */
int cli_lora_open(const cli_lora *l, const stk_params *p, const stk_stack *st, const char *const *served,
                  int n_served, lora_registry **out);

#endif
