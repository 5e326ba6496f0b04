/* template: chat templates rendered exactly as Hugging Face transformers' apply_chat_template does.
 *
 * The language is Jinja2 (3.1) in transformers' environment: an ImmutableSandboxedEnvironment with
 * trim_blocks and lstrip_blocks, the loopcontrols extension (break/continue), the {% generation %}
 * tag (renders its body), tojson = json.dumps(ensure_ascii=False, indent, separators, sort_keys),
 * globals raise_exception(msg) and strftime_now(fmt), and jinja2's default Undefined (an undefined
 * value prints as "", is falsy and iterates as empty; attribute/item access, calls and arithmetic
 * on it are errors; a missing key or attribute of a dict, or anything of None, is such an undefined).
 * @huggingface/jinja is laxer here (attributes of undefined are undefined); we follow transformers.
 * Values follow Python: str() of None is "None", of a list is its repr, 1 == 1.0, |safe makes a
 * Markup that HTML-escapes what is added to it, list.append is refused by the sandbox, and so on
 * (details in the file comments of src/template/). Not implemented, with a clear error: integers
 * beyond 64 bits, recursive loops, include/import/extends, *args and **kwargs in calls, loop.changed,
 * and the filters groupby, random, urlize, urlencode, wordwrap, xmlattr, filesizeformat.
 *
 * Compile once, render many times: a tmpl_template is immutable after tmpl_compile() and may be
 * rendered from several threads at once. Each render allocates from its own arena, bounded by
 * tmpl_limits, and never crashes or hangs on a hostile template: syntax errors, raise_exception,
 * undefined names, type errors and runaway loops come back as an error with the template line.
 *
 * Every fallible function returns 0 or a negative VC_E* (VC_EFORMAT: syntax error or bad input
 * JSON; VC_EINVAL: the template failed while rendering; VC_EUNSUP: valid Jinja this interpreter does
 * not implement; VC_ENOMEM) with the message in vc_errmsg() and, when `err` is not NULL, the error
 * kind, line and message in *err. */
#ifndef VLLMC_TEMPLATE_TEMPLATE_H
#define VLLMC_TEMPLATE_TEMPLATE_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

typedef struct tmpl_template tmpl_template;

enum tmpl_errkind {
    TMPL_ERR_NONE = 0,
    TMPL_ERR_SYNTAX,      /* the template does not parse */
    TMPL_ERR_RAISED,      /* raise_exception(msg) was called; message is msg itself */
    TMPL_ERR_UNDEFINED,   /* an undefined value was used (jinja2's UndefinedError) */
    TMPL_ERR_TYPE,        /* an operation, filter, test or call got the wrong types or arguments */
    TMPL_ERR_SECURITY,    /* refused by the sandbox, e.g. list.append (as in transformers) */
    TMPL_ERR_LIMIT,       /* step budget, output size, memory or recursion depth exceeded */
    TMPL_ERR_UNSUPPORTED, /* valid Jinja2 that this interpreter does not implement */
    TMPL_ERR_INPUT,       /* messages/tools/kwargs are not JSON of the expected shape */
    TMPL_ERR_NOMEM,
};

typedef struct {
    int kind;          /* enum tmpl_errkind */
    int line;          /* template line (1-based), 0 when not about a template line */
    char message[512]; /* for TMPL_ERR_RAISED exactly the raise_exception() argument */
} tmpl_error;

/* Bounds of one render; a zero field takes the default. */
typedef struct {
    uint64_t max_steps; /* evaluation steps (nodes, loop iterations, items processed); 20,000,000 */
    size_t max_output;  /* bytes of any one string, the output included; 64 MiB */
    size_t max_memory;  /* bytes the render may allocate; 256 MiB */
    int max_depth;      /* nested macro calls; 100 */
} tmpl_limits;

int tmpl_compile(const char *src, size_t len, tmpl_template **out, tmpl_error *err);
void tmpl_free(tmpl_template *t);

/* Render with the variables of a JSON object (text): each key becomes a template variable. JSON
 * text keeps Python's distinctions (1 vs 1.0, key order, 64-bit integers). *out is malloc'd and
 * NUL-terminated; *out_len excludes the NUL. */
int tmpl_render_json(const tmpl_template *t, const char *vars_json, size_t vars_len,
                     const tmpl_limits *lim, char **out, size_t *out_len, tmpl_error *err);

/* The variables transformers passes to a chat template. Each JSON input may be given as text
 * (preferred: exact numbers) or as cJSON (numbers that are whole become ints); text wins when both
 * are set. tools and documents are None when absent, as in transformers; every key of kwargs
 * (chat_template_kwargs) becomes a variable and may override the others, as in transformers. A
 * NULL token is left undefined (transformers omits special tokens that are not set). */
typedef struct {
    const char *messages_json;  const struct cJSON *messages;  /* array, required */
    const char *tools_json;     const struct cJSON *tools;     /* array or NULL */
    const char *documents_json; const struct cJSON *documents; /* array or NULL */
    const char *kwargs_json;    const struct cJSON *kwargs;    /* object or NULL */
    /* Optional JSON object text shaped like an OpenAI chat request: its "messages", "tools",
     * "documents" and "chat_template_kwargs" are used for the fields not given above, and a true
     * "add_generation_prompt" in it sets the flag. */
    const char *request_json;
    int add_generation_prompt;
    const char *bos_token, *eos_token, *unk_token, *pad_token;
    int64_t now; /* strftime_now's clock, seconds since the epoch; 0 = the current time */
} tmpl_chat_args;

int tmpl_render_chat(const tmpl_template *t, const tmpl_chat_args *a, const tmpl_limits *lim,
                     char **out, size_t *out_len, tmpl_error *err);

/* One call: compile, render with default limits, free. */
int tmpl_apply_chat_template(const char *tmpl, size_t len, const struct cJSON *messages,
                             const struct cJSON *tools, const struct cJSON *extra_kwargs,
                             int add_generation_prompt, const char *bos_token,
                             const char *eos_token, char **out, size_t *out_len);

/* A model's chat template and special tokens, found the way transformers does:
 *   1. DIR/chat_template.jinja (transformers gives it priority over the config), or
 *      DIR/additional_chat_templates/NAME.jinja when a name is asked for;
 *   2. tokenizer_config.json "chat_template": a string, or a list of {"name","template"} from
 *      which `name` is taken if given, else "tool_use" when with_tools and present, else "default";
 *   3. DIR/chat_template.json {"chat_template": ...} (the processor's file).
 * Special tokens come from tokenizer_config.json (a string or an AddedToken {"content": ...}),
 * else special_tokens_map.json. Fields are malloc'd; tokens are NULL when the model has none, and
 * source is NULL when no template was found and need_template is 0 (only the tokens wanted). */
typedef struct {
    char *source;
    size_t len;
    char *origin; /* where the template came from, for messages */
    char *bos_token, *eos_token, *unk_token, *pad_token;
} tmpl_model;

int tmpl_model_load(const char *dir, const char *name, int with_tools, int need_template, tmpl_model *out);
/* The template from a tokenizer_config.json object (rule 2 above); *src points into cfg. */
int tmpl_select_from_config(const struct cJSON *cfg, const char *name, int with_tools,
                            const char **src);
void tmpl_model_free(tmpl_model *m);

#endif
