/* lora_flags: vLLM's LoRA flags (--enable-lora, --lora-modules, --max-loras, --max-lora-rank,
 * --max-cpu-loras) for serve, generate and bench (see cli.h), and the registry they describe.
 *
 * As vLLM reads them: --max-loras / --max-lora-rank / --max-cpu-loras mean nothing without
 * --enable-lora (vLLM builds no LoRAConfig then, so their values are not even range-checked), but a
 * --lora-modules entry without it stops the server ("LoRA is not enabled. Use --enable-lora to
 * enable LoRA."); --max-lora-rank is one of vLLM's choices; --max-cpu-loras defaults to
 * --max-loras and may not be smaller. A --lora-modules value is `name=path` (one '=', no ',') or
 * the JSON object {"name": ..., "path": ..., "base_model_name": ...} (LoRAParserAction). */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "cli/cli.h"

static const int ranks[] = {1, 8, 16, 32, 64, 128, 256, 320, 512}; /* vLLM's MaxLoRARanks */

void cli_lora_init(cli_lora *l) {
    memset(l, 0, sizeof *l);
    l->max_loras = 1;
    l->max_lora_rank = 16;
}

void cli_lora_free(cli_lora *l) {
    for (int i = 0; i < l->n_mods; i++) {
        free(l->mods[i].name);
        free(l->mods[i].path);
        free(l->mods[i].base);
    }
    free(l->mods);
    l->mods = NULL;
    l->n_mods = 0;
}

static int add_module(cli_lora *l, const char *name, size_t name_len, const char *path, const char *base) {
    cli_lora_module *nm = realloc(l->mods, sizeof *nm * (size_t)(l->n_mods + 1));
    if (!nm) {
        cli_error("out of memory");
        return -1;
    }
    l->mods = nm;
    cli_lora_module *m = &l->mods[l->n_mods];
    m->name = strndup(name, name_len);
    m->path = strdup(path);
    m->base = base ? strdup(base) : NULL;
    if (!m->name || !m->path || (base && !m->base)) {
        free(m->name);
        free(m->path);
        free(m->base);
        cli_error("out of memory");
        return -1;
    }
    l->n_mods++;
    return 0;
}

/* The JSON form: an object with "name" and "path" (strings) and optionally "base_model_name"
 * (a string or null); any other key is refused, as LoRAModulePath(**dict) refuses it. */
static int parse_json_module(cli_lora *l, const char *flag, const char *item) {
    js_error je;
    cJSON *o = js_parse(item, strlen(item), &je);
    int rc = -1;
    if (!o) {
        cli_error("Invalid JSON format for %s: %s (%s; the forms are name=path and {\"name\": ..., \"path\": ...})",
                  flag, item, je.message);
        return -1;
    }
    const char *name = NULL, *path = NULL, *base = NULL;
    if (!cJSON_IsObject(o)) {
        cli_error("Invalid fields for %s: %s - expected a JSON object {\"name\": ..., \"path\": ..., "
                  "\"base_model_name\": ...} or name=path", flag, item);
        goto out;
    }
    const cJSON *x;
    cJSON_ArrayForEach(x, o) {
        const char *k = x->string;
        if (!strcmp(k, "name") || !strcmp(k, "path")) {
            if (!cJSON_IsString(x) || !x->valuestring[0]) {
                cli_error("Invalid fields for %s: %s - '%s' must be a non-empty string", flag, item, k);
                goto out;
            }
            *(!strcmp(k, "name") ? &name : &path) = x->valuestring;
        } else if (!strcmp(k, "base_model_name")) {
            if (!cJSON_IsNull(x) && !cJSON_IsString(x)) {
                cli_error("Invalid fields for %s: %s - 'base_model_name' must be a string", flag, item);
                goto out;
            }
            base = cJSON_IsString(x) ? x->valuestring : NULL;
        } else {
            cli_error("Invalid fields for %s: %s - unexpected key '%s' (expected name, path, base_model_name)", flag,
                      item, k);
            goto out;
        }
    }
    if (!name || !path) {
        cli_error("Invalid fields for %s: %s - '%s' is missing", flag, item, name ? "path" : "name");
        goto out;
    }
    rc = add_module(l, name, strlen(name), path, base);
out:
    cJSON_Delete(o);
    return rc;
}

int cli_lora_add(cli_lora *l, const char *flag, const char *item) {
    if (!*item) return 0; /* vLLM skips empty items */
    const char *eq = strchr(item, '=');
    if (eq && !strchr(item, ',')) { /* name=path */
        if (strchr(eq + 1, '=') || eq == item || !eq[1]) {
            cli_error("%s: expected name=path (one '=', a name and a path) or a JSON object, got '%s'", flag, item);
            return -1;
        }
        return add_module(l, item, (size_t)(eq - item), eq + 1, NULL);
    }
    return parse_json_module(l, flag, item);
}

int cli_lora_flag(cli_args *a, cli_lora *l, const char *modules_flag) {
    const char *v;
    long long n;
    if (cli_flag(a, "--enable-lora")) {
        l->enable = 1;
        return 1;
    }
    if (cli_flag(a, "--max-loras")) {
        if (!(v = cli_value(a, "--max-loras")) || cli_parse_int(v, "--max-loras", -(1LL << 30), 1 << 30, &n)) return -1;
        l->max_loras = (int)n;
        return 1;
    }
    if (cli_flag(a, "--max-cpu-loras")) {
        if (!(v = cli_value(a, "--max-cpu-loras")) || cli_parse_int(v, "--max-cpu-loras", -(1LL << 30), 1 << 30, &n))
            return -1;
        l->max_cpu_loras = (int)n;
        l->max_cpu_loras_given = 1;
        return 1;
    }
    if (cli_flag(a, "--max-lora-rank")) {
        if (!(v = cli_value(a, "--max-lora-rank"))) return -1;
        char *end;
        long r = strtol(v, &end, 10);
        int k = 0, nr = (int)(sizeof ranks / sizeof *ranks);
        while (k < nr && !(*v && !*end && r == ranks[k])) k++;
        if (k == nr) { /* argparse's wording for a choice */
            cli_error("argument --max-lora-rank: invalid choice: '%s' (choose from 1, 8, 16, 32, 64, 128, 256, 320, "
                      "512)", v);
            return -1;
        }
        l->max_lora_rank = ranks[k];
        return 1;
    }
    if (modules_flag && cli_flag(a, modules_flag)) {
        int got = 0;
        if (a->inline_val) {
            if (cli_lora_add(l, modules_flag, cli_value(a, modules_flag))) return -1;
            got = 1;
        }
        /* serve's --lora-modules takes one or more values (nargs='+'); generate's --lora one, repeatable */
        int many = !strcmp(modules_flag, "--lora-modules");
        while (a->i < a->argc && a->argv[a->i][0] != '-' && (many || !got)) {
            if (cli_lora_add(l, modules_flag, a->argv[a->i++])) return -1;
            got = 1;
        }
        if (!got) {
            cli_error("%s needs a value (name=path or a JSON object)", modules_flag);
            return -1;
        }
        return 1;
    }
    return 0;
}

int cli_lora_check(cli_lora *l, eng_config *ec) {
    ec->max_loras = 0;
    if (!l->enable) {
        if (l->n_mods) {
            cli_error("LoRA is not enabled. Use --enable-lora to enable LoRA. (--lora-modules was given)");
            return -1;
        }
        return 0;
    }
    if (l->max_loras < 1) {
        cli_error("--max-loras: must be at least 1 (got %d)", l->max_loras);
        return -1;
    }
    if (!l->max_cpu_loras_given) l->max_cpu_loras = l->max_loras;
    if (l->max_cpu_loras < l->max_loras) {
        cli_error("max_cpu_loras (%d) must be >= max_loras (%d)", l->max_cpu_loras, l->max_loras);
        return -1;
    }
    for (int i = 0; i < l->n_mods; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(l->mods[i].name, l->mods[j].name)) {
                cli_error("The lora adapter '%s' has already been loaded. (named twice in the LoRA flags)",
                          l->mods[i].name);
                return -1;
            }
    ec->max_loras = l->max_loras;
    ec->max_lora_rank = l->max_lora_rank;
    return 0;
}

int cli_lora_open(const cli_lora *l, const stk_params *p, const stk_stack *st, const char *const *served,
                  int n_served, lora_registry **out) {
    *out = NULL;
    if (!l->enable) return 0;
    /* Hub ids: into --download-dir's cache like the model, but at "main": --revision names a revision of
     * the model's repo (a commit there means nothing in an adapter's); vLLM downloads adapters with
     * snapshot_download(repo_id) alone */
    lora_reg_opts o = {st->m, l->max_lora_rank, l->max_cpu_loras, p->download_dir, NULL};
    lora_registry *r = NULL;
    if (lora_reg_new(&o, &r)) {
        cli_error("%s", vc_errmsg());
        return -1;
    }
    for (int i = 0; i < l->n_mods; i++) {
        const cli_lora_module *m = &l->mods[i];
        const char *base = NULL;
        for (int k = 0; m->base && k < n_served; k++)
            if (!strcmp(served[k], m->base)) base = m->base;
        if (m->base && !base) /* vLLM keeps base_model_name only when it is a served model's name */
            fprintf(stderr, "WARNING vllmc: LoRA adapter '%s': base_model_name '%s' is not a served model name; its "
                            "parent in /v1/models is '%s'\n", m->name, m->base, n_served ? served[0] : "");
        if (lora_reg_add(r, m->name, m->path, base)) {
            cli_error("%s", vc_errmsg());
            lora_reg_free(r);
            return -1;
        }
        if (!p->quiet) fprintf(stderr, "INFO vllmc: LoRA adapter '%s' loaded from '%s'\n", m->name, m->path);
    }
    *out = r;
    return 0;
}
