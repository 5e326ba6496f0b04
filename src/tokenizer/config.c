/* config: tokenizer_config.json, read the way transformers' fast tokenizers do.
 *
 *  - bos/eos/unk/pad_token: a string or an AddedToken object ({"content": ...}).
 *  - added_tokens_decoder: entries that differ from tokenizer.json's added
 *    tokens (content or flags) are added again with the config's flags, and
 *    special-token strings (bos, eos, unk, pad, sep, cls, mask,
 *    additional_special_tokens) that are not added tokens yet become special
 *    added tokens (PreTrainedTokenizerFast.__init__).
 *  - add_bos_token / add_eos_token: Llama / CodeLlama / Gemma tokenizer
 *    classes rebuild the post-processor from them (update_post_processor,
 *    defaults bos on, eos off); for other classes they are used only when
 *    tokenizer.json has no post_processor.
 *  - chat_template: a string (named "default") or a list of {name, template}.
 *  - clean_up_tokenization_spaces (default false), model_max_length, and any
 *    other top-level string field through tok_config_string.
 * JSON null counts as absent everywhere. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "tok_internal.h"

static int dup_to(char **dst, const char *s, size_t n) {
    free(*dst);
    *dst = tok_strndup(s, n);
    return *dst ? 0 : vc_errf(VC_ENOMEM, "out of memory");
}

/* A special token value: "str" or {"content": "str", ...}. NULL if neither. */
static const tok_jv *token_string(const tok_jv *v) {
    if (v && v->type == TOK_J_STR) return v;
    if (v && v->type == TOK_J_OBJ) {
        const tok_jv *c = tok_jget(v, "content");
        if (c && c->type == TOK_J_STR) return c;
    }
    return NULL;
}

static int get_bool(const tok_jv *root, const char *key, int dflt) {
    const tok_jv *v = tok_jget(root, key);
    if (v && v->type == TOK_J_TRUE) return 1;
    if (v && v->type == TOK_J_FALSE) return 0;
    return dflt;
}

static int add_kv(tok_config *c, const char *k, size_t kl, const char *v, size_t vl) {
    char **nk = realloc(c->keys, (c->n_kv + 1) * sizeof *nk);
    if (!nk) return vc_errf(VC_ENOMEM, "out of memory");
    c->keys = nk;
    char **nv = realloc(c->vals, (c->n_kv + 1) * sizeof *nv);
    if (!nv) return vc_errf(VC_ENOMEM, "out of memory");
    c->vals = nv;
    c->keys[c->n_kv] = tok_strndup(k, kl);
    c->vals[c->n_kv] = tok_strndup(v, vl);
    if (!c->keys[c->n_kv] || !c->vals[c->n_kv]) {
        free(c->keys[c->n_kv]);
        free(c->vals[c->n_kv]);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    c->n_kv++;
    return 0;
}

static int add_template(tok_config *c, const char *name, size_t nl, const char *tmpl, size_t tl) {
    char **nn = realloc(c->tmpl_names, (c->n_tmpl + 1) * sizeof *nn);
    if (!nn) return vc_errf(VC_ENOMEM, "out of memory");
    c->tmpl_names = nn;
    char **nt = realloc(c->tmpls, (c->n_tmpl + 1) * sizeof *nt);
    if (!nt) return vc_errf(VC_ENOMEM, "out of memory");
    c->tmpls = nt;
    c->tmpl_names[c->n_tmpl] = tok_strndup(name, nl);
    c->tmpls[c->n_tmpl] = tok_strndup(tmpl, tl);
    if (!c->tmpl_names[c->n_tmpl] || !c->tmpls[c->n_tmpl]) {
        free(c->tmpl_names[c->n_tmpl]);
        free(c->tmpls[c->n_tmpl]);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    c->n_tmpl++;
    return 0;
}

static int parse(tok_config *c, const tok_jv *root, const char *what) {
    int rc;
    static const char *const names[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    char **dst[] = {&c->bos, &c->eos, &c->unk, &c->pad};
    for (int i = 0; i < 4; i++) {
        const tok_jv *s = token_string(tok_jget(root, names[i]));
        if (s && (rc = dup_to(dst[i], s->u.str, s->len))) return rc;
    }
    c->add_bos = get_bool(root, "add_bos_token", -1);
    c->add_eos = get_bool(root, "add_eos_token", -1);
    c->cleanup = get_bool(root, "clean_up_tokenization_spaces", 0);
    c->max_len = -1;
    const tok_jv *ml = tok_jget(root, "model_max_length");
    long long v;
    if (tok_jint(ml, 0, 9007199254740991LL, &v)) c->max_len = v;
    const tok_jv *cls = tok_jget(root, "tokenizer_class");
    if (cls && cls->type == TOK_J_STR && (rc = dup_to(&c->tokenizer_class, cls->u.str, cls->len))) return rc;

    const tok_jv *ct = tok_jget(root, "chat_template");
    if (ct && ct->type == TOK_J_STR) {
        if ((rc = add_template(c, "default", 7, ct->u.str, ct->len))) return rc;
    } else if (ct && ct->type == TOK_J_ARR) {
        for (uint32_t i = 0; i < ct->len; i++) {
            const tok_jv *e = &ct->u.kids[i];
            const tok_jv *n = tok_jget(e, "name"), *t = tok_jget(e, "template");
            if (!n || n->type != TOK_J_STR || !t || t->type != TOK_J_STR)
                return vc_errf(VC_EFORMAT, "%s: chat_template[%u] must be {\"name\": string, \"template\": string}", what, i);
            if ((rc = add_template(c, n->u.str, n->len, t->u.str, t->len))) return rc;
        }
    } else if (!tok_jnull(ct)) {
        return vc_errf(VC_EFORMAT, "%s: chat_template must be a string or a list, not %s", what, tok_jkind(ct));
    }
    if (root->type == TOK_J_OBJ) {
        for (uint32_t i = 0; i < root->len; i++) {
            const tok_jv *m = &root->u.kids[i];
            if (m->type == TOK_J_STR && strcmp(m->key, "chat_template") != 0 &&
                (rc = add_kv(c, m->key, m->klen, m->u.str, m->len)))
                return rc;
        }
    }
    return 0;
}

static int cmp_id(const void *a, const void *b) {
    long long x = ((const long long *)a)[0], y = ((const long long *)b)[0];
    return x < y ? -1 : x > y;
}

/* Is s one of the config's special token strings? */
static int is_config_special(const tok_jv *root, const char *s, size_t n) {
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                       "pad_token", "cls_token", "mask_token"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const tok_jv *v = token_string(tok_jget(root, keys[i]));
        if (v && v->len == n && memcmp(v->u.str, s, n) == 0) return 1;
    }
    const tok_jv *extra = tok_jget(root, "additional_special_tokens");
    if (extra && extra->type == TOK_J_ARR)
        for (uint32_t i = 0; i < extra->len; i++) {
            const tok_jv *v = token_string(&extra->u.kids[i]);
            if (v && v->len == n && memcmp(v->u.str, s, n) == 0) return 1;
        }
    return 0;
}

static int same_added(const tok_tokenizer *t, const char *s, size_t n, const tok_added *a) {
    int32_t id = tok_smap_get(&t->added_map, t->pool.s, s, n);
    if (id < 0) return 0;
    for (size_t k = 0; k < t->n_added; k++) {
        const tok_added *b = &t->added[k];
        if (b->id == id)
            return b->special == a->special && b->normalized == a->normalized && b->lstrip == a->lstrip &&
                   b->rstrip == a->rstrip && b->single_word == a->single_word;
    }
    return 0;
}

static int apply_added(tok_tokenizer *t, const tok_jv *root) {
    int rc = 0;
    const tok_jv *atd = tok_jget(root, "added_tokens_decoder");
    if (atd && atd->type == TOK_J_OBJ && atd->len) {
        long long(*order)[2] = malloc(atd->len * sizeof *order);
        if (!order) return vc_errf(VC_ENOMEM, "out of memory");
        for (uint32_t i = 0; i < atd->len; i++) {
            order[i][0] = strtoll(atd->u.kids[i].key, NULL, 10);
            order[i][1] = i;
        }
        qsort(order, atd->len, sizeof *order, cmp_id);
        for (uint32_t i = 0; i < atd->len && !rc; i++) {
            const tok_jv *e = &atd->u.kids[order[i][1]];
            const tok_jv *c = tok_jget(e, "content");
            if (e->type != TOK_J_OBJ || !c || c->type != TOK_J_STR) continue;
            tok_added a;
            tok_added_flags(e, &a);
            if (same_added(t, c->u.str, c->len, &a)) continue;
            a.special |= (uint8_t)is_config_special(root, c->u.str, c->len);
            rc = tok_added_add(t, c->u.str, c->len, &a);
        }
        free(order);
        if (rc) return rc;
    }
    /* special token strings that are not added tokens yet */
    static const char *const keys[] = {"bos_token", "eos_token", "unk_token", "sep_token",
                                       "pad_token", "cls_token", "mask_token"};
    const tok_jv *list[64];
    size_t nl = 0;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const tok_jv *v = token_string(tok_jget(root, keys[i]));
        if (v) list[nl++] = v;
    }
    const tok_jv *extra = tok_jget(root, "additional_special_tokens");
    for (uint32_t i = 0; extra && extra->type == TOK_J_ARR && i < extra->len; i++) {
        const tok_jv *v = token_string(&extra->u.kids[i]);
        if (v && nl < sizeof list / sizeof list[0]) list[nl++] = v;
    }
    /* transformers' class defaults that configs usually leave out (GemmaTokenizer: mask_token "<mask>") */
    static const tok_jv gemma_mask = {.type = TOK_J_STR, .len = 6, .u.str = (char *)"<mask>"};
    const tok_jv *cls = tok_jget(root, "tokenizer_class");
    if (cls && cls->type == TOK_J_STR && !tok_jget(root, "mask_token") && nl < sizeof list / sizeof list[0] &&
        (!strcmp(cls->u.str, "GemmaTokenizer") || !strcmp(cls->u.str, "GemmaTokenizerFast")))
        list[nl++] = &gemma_mask;
    /* transformers registers every special-token attribute as a special added
     * token, also one that tokenizer.json lists as a normal added token */
    for (size_t i = 0; i < nl; i++) {
        int32_t id = tok_smap_get(&t->added_map, t->pool.s, list[i]->u.str, list[i]->len);
        tok_added a = {0};
        if (id >= 0) {
            size_t k = 0;
            while (k < t->n_added && t->added[k].id != id) k++;
            if (k == t->n_added || t->added[k].special) continue;
            a = t->added[k];
        } else if (list[i] == &gemma_mask) {
            continue; /* a class default names no new token */
        }
        a.special = 1;
        if ((rc = tok_added_add(t, list[i]->u.str, list[i]->len, &a))) return rc;
    }
    return 0;
}

static int32_t token_id(const tok_tokenizer *t, const char *s) {
    return s ? tok_token_to_id(t, s, strlen(s)) : -1;
}

/* update_post_processor of LlamaTokenizerFast & co. */
static int apply_post(tok_tokenizer *t, int had_post) {
    tok_config *c = &t->cfg;
    const char *cls = c->tokenizer_class;
    static const char *const families[] = {"LlamaTokenizer", "LlamaTokenizerFast", "CodeLlamaTokenizer",
                                           "CodeLlamaTokenizerFast", "GemmaTokenizer", "GemmaTokenizerFast"};
    int family = 0;
    for (size_t i = 0; cls && i < sizeof families / sizeof families[0]; i++)
        if (strcmp(cls, families[i]) == 0) family = 1;
    int add_bos, add_eos;
    if (family) {
        add_bos = c->add_bos < 0 ? 1 : c->add_bos;
        add_eos = c->add_eos < 0 ? 0 : c->add_eos;
    } else if (!had_post && (c->add_bos >= 0 || c->add_eos >= 0)) {
        add_bos = c->add_bos > 0;
        add_eos = c->add_eos > 0;
    } else {
        return 0;
    }
    int32_t bos = token_id(t, c->bos), eos = token_id(t, c->eos);
    if (add_bos && bos < 0)
        return vc_errf(VC_EFORMAT, "%s: add_bos_token is true but bos_token is missing or not in the vocabulary", t->what);
    if (add_eos && eos < 0)
        return vc_errf(VC_EFORMAT, "%s: add_eos_token is true but eos_token is missing or not in the vocabulary", t->what);
    for (size_t i = 0; i < t->n_posts; i++) {
        for (size_t j = 0; j < t->posts[i].n; j++) free(t->posts[i].items[j].ids);
        free(t->posts[i].items);
    }
    t->n_posts = 1;
    tok_tmpl *tp = &t->posts[0];
    tp->n = 0;
    tp->items = calloc(3, sizeof *tp->items);
    if (!tp->items) return vc_errf(VC_ENOMEM, "out of memory");
    int32_t ids[2] = {bos, eos};
    for (int part = 0; part < 3; part++) {
        if ((part == 0 && !add_bos) || (part == 2 && !add_eos)) continue;
        tok_titem *it = &tp->items[tp->n++];
        it->is_seq = part == 1;
        if (part == 1) continue;
        it->ids = malloc(sizeof *it->ids);
        if (!it->ids) return vc_errf(VC_ENOMEM, "out of memory");
        it->ids[0] = ids[part / 2];
        it->n = 1;
    }
    return 0;
}

/* transformers 5 builds LlamaTokenizer / CodeLlamaTokenizer's pipeline itself
 * instead of taking tokenizer.json's: no normalizer and a Metaspace
 * pre-tokenizer (replacement U+2581, split off, prepend "always" with legacy
 * on, the default, else "first"). For the SentencePiece layout of those files
 * (normalizer Prepend U+2581 + Replace ' ' -> U+2581, no pre-tokenizer) the two
 * differ only on text that starts with a space: " t" is "▁t" for transformers
 * but "▁▁t" for tokenizer.json. We follow transformers (what vLLM runs). */
static void apply_llama_pipeline(tok_tokenizer *t, const tok_jv *root) {
    const char *cls = t->cfg.tokenizer_class;
    if (!cls || (strcmp(cls, "LlamaTokenizer") && strcmp(cls, "LlamaTokenizerFast") && strcmp(cls, "CodeLlamaTokenizer") &&
                 strcmp(cls, "CodeLlamaTokenizerFast")))
        return;
    static const char mark[] = "\xe2\x96\x81";
    if (t->n_norms != 2 || t->n_pretoks != 0 || t->norms[0].type != TN_PREPEND || t->norms[1].type != TN_REPLACE ||
        t->norms[0].str_len != 3 || memcmp(t->norms[0].str, mark, 3) != 0 || t->norms[1].str_len != 3 ||
        memcmp(t->norms[1].str, mark, 3) != 0)
        return;
    const tok_jv *legacy = tok_jget(root, "legacy");
    int first = legacy && legacy->type == TOK_J_FALSE;
    for (size_t i = 0; i < t->n_norms; i++) tok_norm_free(&t->norms[i]);
    t->n_norms = 0;
    tok_pretok *m = &t->pretoks[0];
    memset(m, 0, sizeof *m);
    m->type = TP_METASPACE;
    m->scheme = first ? TM_FIRST : TM_ALWAYS;
    m->split = 0;
    m->ch = 0x2581;
    memcpy(m->ch_s, mark, 3);
    m->ch_len = 3;
    t->n_pretoks = 1;
}

int tok_config_load(tok_tokenizer *t, const tok_jv *root, const char *what) {
    if (!root || root->type != TOK_J_OBJ)
        return vc_errf(VC_EFORMAT, "%s: must be a JSON object, not %s", what, tok_jkind(root));
    int had_post = t->has_post;
    int rc;
    if ((rc = parse(&t->cfg, root, what)) || (rc = apply_added(t, root))) return rc;
    apply_llama_pipeline(t, root);
    return apply_post(t, had_post);
}

void tok_config_free(tok_config *c) {
    free(c->bos);
    free(c->eos);
    free(c->pad);
    free(c->unk);
    free(c->tokenizer_class);
    for (size_t i = 0; i < c->n_tmpl; i++) {
        free(c->tmpl_names[i]);
        free(c->tmpls[i]);
    }
    free(c->tmpl_names);
    free(c->tmpls);
    for (size_t i = 0; i < c->n_kv; i++) {
        free(c->keys[i]);
        free(c->vals[i]);
    }
    free(c->keys);
    free(c->vals);
    memset(c, 0, sizeof *c);
}

/* ---- accessors ---- */

const char *tok_bos_token(const tok_tokenizer *t) { return t->cfg.bos; }
const char *tok_eos_token(const tok_tokenizer *t) { return t->cfg.eos; }
const char *tok_pad_token(const tok_tokenizer *t) { return t->cfg.pad; }
const char *tok_unk_token(const tok_tokenizer *t) { return t->cfg.unk; }
int32_t tok_bos_id(const tok_tokenizer *t) { return token_id(t, t->cfg.bos); }
int32_t tok_eos_id(const tok_tokenizer *t) { return token_id(t, t->cfg.eos); }
int tok_add_bos_token(const tok_tokenizer *t) { return t->cfg.add_bos; }
int tok_add_eos_token(const tok_tokenizer *t) { return t->cfg.add_eos; }
long long tok_model_max_length(const tok_tokenizer *t) { return t->cfg.max_len; }
int tok_clean_up_spaces(const tok_tokenizer *t) { return t->cfg.cleanup; }
size_t tok_chat_template_count(const tok_tokenizer *t) { return t->cfg.n_tmpl; }

const char *tok_chat_template_name(const tok_tokenizer *t, size_t i) {
    return i < t->cfg.n_tmpl ? t->cfg.tmpl_names[i] : NULL;
}

const char *tok_chat_template(const tok_tokenizer *t, const char *name) {
    const tok_config *c = &t->cfg;
    if (!name) {
        if (c->n_tmpl == 1) return c->tmpls[0];
        name = "default";
    }
    for (size_t i = 0; i < c->n_tmpl; i++)
        if (strcmp(c->tmpl_names[i], name) == 0) return c->tmpls[i];
    return NULL;
}

const char *tok_config_string(const tok_tokenizer *t, const char *key) {
    const tok_config *c = &t->cfg;
    for (size_t i = c->n_kv; i-- > 0;)
        if (strcmp(c->keys[i], key) == 0) return c->vals[i];
    return NULL;
}
