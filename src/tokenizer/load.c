/* load: tokenizer.json's top-level components -> the tok_tokenizer tables.
 *
 * Order matters and follows Rust: the model (vocabulary, merges) first, then
 * the added tokens (whose ids depend on the model vocabulary), the
 * normalizer (needed to build the normalized added-token trie), the
 * pre-tokenizer, post-processor and decoder. "truncation" and "padding" are
 * ignored: transformers switches them off for every call it makes.
 * Post-processors: TemplateProcessing (single template), ByteLevel (changes
 * offsets only), RobertaProcessing / BertProcessing (<cls> $A <sep>) and
 * Sequence; anything else is a load error. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/stack.h"
#include "tok_internal.h"

int tok_pool_add(tok_tokenizer *t, const char *s, size_t n, uint32_t *off) {
    if (t->pool.len + n + 1 > UINT32_MAX) return vc_errf(VC_EFORMAT, "%s: vocabulary too large", t->what);
    *off = (uint32_t)t->pool.len;
    int rc = tok_buf_put(&t->pool, s, n);
    if (rc) return rc;
    t->pool.len++; /* keep the NUL */
    return 0;
}

int tok_set_id(tok_tokenizer *t, int32_t id, uint32_t off, int32_t len) {
    if (id < 0 || id >= TOK_MAX_ID) return vc_errf(VC_EFORMAT, "%s: token id %d out of range", t->what, id);
    if ((size_t)id >= t->n_ids) {
        size_t nn = t->n_ids ? t->n_ids : 1024;
        while (nn <= (size_t)id) nn *= 2;
        uint32_t *no = realloc(t->id_off, nn * sizeof *no);
        if (!no) return vc_errf(VC_ENOMEM, "out of memory");
        t->id_off = no;
        int32_t *nl = realloc(t->id_len, nn * sizeof *nl);
        if (!nl) return vc_errf(VC_ENOMEM, "out of memory");
        t->id_len = nl;
        uint8_t *nf = realloc(t->id_flags, nn);
        if (!nf) return vc_errf(VC_ENOMEM, "out of memory");
        t->id_flags = nf;
        for (size_t i = t->n_ids; i < nn; i++) {
            t->id_len[i] = -1;
            t->id_flags[i] = 0;
        }
        t->n_ids = nn;
    }
    t->id_off[id] = off;
    t->id_len[id] = len;
    return 0;
}

/* GPT-2 bytes_to_unicode */
static void bytelevel_tables(tok_tokenizer *t) {
    for (int i = 0; i < 0x144; i++) t->bl_dec[i] = -1;
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        uint32_t cp = printable ? (uint32_t)b : (uint32_t)(256 + extra++);
        t->bl_len[b] = (uint8_t)tok_u8enc(cp, t->bl_enc[b]);
        t->bl_dec[cp] = (int16_t)b;
    }
}

/* ---- post-processors ---- */

static int tmpl_add(tok_tmpl *tp, int is_seq, const int32_t *ids, size_t n) {
    tok_titem *ni = realloc(tp->items, (tp->n + 1) * sizeof *ni);
    if (!ni) return vc_errf(VC_ENOMEM, "out of memory");
    tp->items = ni;
    tok_titem *it = &tp->items[tp->n];
    memset(it, 0, sizeof *it);
    it->is_seq = is_seq;
    if (n) {
        if (!(it->ids = malloc(n * sizeof *ids))) return vc_errf(VC_ENOMEM, "out of memory");
        memcpy(it->ids, ids, n * sizeof *ids);
        it->n = n;
    }
    tp->n++;
    return 0;
}

static int load_template(tok_tokenizer *t, const tok_jv *v, tok_tmpl *tp, const char *where) {
    const tok_jv *single = tok_jget(v, "single"), *specials = tok_jget(v, "special_tokens");
    if (!single || single->type != TOK_J_ARR)
        return vc_errf(VC_EUNSUP, "%s: %s: TemplateProcessing \"single\" must be a list of pieces", t->what, where);
    for (uint32_t i = 0; i < single->len; i++) {
        const tok_jv *piece = &single->u.kids[i];
        const tok_jv *sp = tok_jget(piece, "SpecialToken"), *sq = tok_jget(piece, "Sequence");
        int rc;
        if (sq) {
            const tok_jv *id = tok_jget(sq, "id");
            if (!id || id->type != TOK_J_STR || strcmp(id->u.str, "A") != 0)
                return vc_errf(VC_EFORMAT, "%s: %s: the single template may only use sequence A", t->what, where);
            if ((rc = tmpl_add(tp, 1, NULL, 0))) return rc;
        } else if (sp) {
            const tok_jv *id = tok_jget(sp, "id");
            if (!id || id->type != TOK_J_STR)
                return vc_errf(VC_EFORMAT, "%s: %s: SpecialToken piece needs a string id", t->what, where);
            const tok_jv *st = tok_jget(specials, id->u.str);
            const tok_jv *ids = tok_jget(st, "ids");
            if (!ids || ids->type != TOK_J_ARR)
                return vc_errf(VC_EFORMAT, "%s: %s: special token '%s' is missing from special_tokens", t->what, where,
                               id->u.str);
            int32_t buf[64];
            if (ids->len > 64) return vc_errf(VC_EUNSUP, "%s: %s: special token '%s' has too many ids", t->what, where, id->u.str);
            for (uint32_t k = 0; k < ids->len; k++) {
                long long x;
                if (!tok_jint(&ids->u.kids[k], 0, TOK_MAX_ID - 1, &x))
                    return vc_errf(VC_EFORMAT, "%s: %s: special token '%s' has a bad id", t->what, where, id->u.str);
                buf[k] = (int32_t)x;
            }
            if ((rc = tmpl_add(tp, 0, buf, ids->len))) return rc;
        } else {
            return vc_errf(VC_EFORMAT, "%s: %s: template piece must be SpecialToken or Sequence", t->what, where);
        }
    }
    return 0;
}

/* RobertaProcessing / BertProcessing: "cls": [token, id], "sep": [token, id] */
static int load_cls_sep(tok_tokenizer *t, const tok_jv *v, tok_tmpl *tp, const char *where) {
    int32_t ids[2];
    const char *keys[2] = {"cls", "sep"};
    for (int i = 0; i < 2; i++) {
        const tok_jv *p = tok_jget(v, keys[i]);
        long long x;
        if (!p || p->type != TOK_J_ARR || p->len != 2 || !tok_jint(&p->u.kids[1], 0, TOK_MAX_ID - 1, &x))
            return vc_errf(VC_EFORMAT, "%s: %s: \"%s\" must be [token, id]", t->what, where, keys[i]);
        ids[i] = (int32_t)x;
    }
    int rc;
    if ((rc = tmpl_add(tp, 0, &ids[0], 1)) || (rc = tmpl_add(tp, 1, NULL, 0)) || (rc = tmpl_add(tp, 0, &ids[1], 1)))
        return rc;
    return 0;
}

int tok_load_sequence(tok_tokenizer *t, const tok_jv *v, const char *list_key, const char *where, int depth,
                      tok_load_fn fn) {
    const tok_jv *list = tok_jget(v, list_key);
    if (!list || list->type != TOK_J_ARR)
        return vc_errf(VC_EFORMAT, "%s: %s: Sequence needs a \"%s\" list", t->what, where, list_key);
    if (depth > 8) return vc_errf(VC_EFORMAT, "%s: %s: Sequences nested too deeply", t->what, where);
    /* every Sequence loader (normalizer, pre-tokenizer, post-processor, decoder) recurses through here */
    if (vc_stack_low())
        return vc_errf(VC_EFORMAT, "%s: %s: Sequences nested too deeply for this thread's stack", t->what, where);
    for (uint32_t i = 0; i < list->len; i++) {
        int rc = fn(t, &list->u.kids[i], where, depth + 1);
        if (rc) return rc;
    }
    return 0;
}

static int load_post(tok_tokenizer *t, const tok_jv *v, const char *where, int depth) {
    if (tok_jnull(v)) return 0;
    const tok_jv *type = tok_jget(v, "type");
    if (!type || type->type != TOK_J_STR) return vc_errf(VC_EFORMAT, "%s: %s has no \"type\"", t->what, where);
    const char *ty = type->u.str;
    if (strcmp(ty, "Sequence") == 0) return tok_load_sequence(t, v, "processors", where, depth, load_post);
    if (strcmp(ty, "ByteLevel") == 0) return 0; /* offsets only */
    if (t->n_posts == TOK_MAX_STEPS) return vc_errf(VC_EUNSUP, "%s: %s: too many steps", t->what, where);
    tok_tmpl *tp = &t->posts[t->n_posts++];
    memset(tp, 0, sizeof *tp);
    if (strcmp(ty, "TemplateProcessing") == 0) return load_template(t, v, tp, where);
    if (strcmp(ty, "RobertaProcessing") == 0 || strcmp(ty, "BertProcessing") == 0) return load_cls_sep(t, v, tp, where);
    t->n_posts--;
    return vc_errf(VC_EUNSUP, "%s: unsupported %s type '%s'", t->what, where, ty);
}

int tok_load_components(tok_tokenizer *t, const tok_jv *root) {
    if (!root || root->type != TOK_J_OBJ)
        return vc_errf(VC_EFORMAT, "%s: must be a JSON object, not %s", t->what, tok_jkind(root));
    bytelevel_tables(t);
    int rc;
    if ((rc = tok_bpe_load(t, tok_jget(root, "model")))) return rc;
    if ((rc = tok_added_load(t, tok_jget(root, "added_tokens")))) return rc;
    if ((rc = tok_norm_load(t, tok_jget(root, "normalizer"), "normalizer"))) return rc;
    if ((rc = tok_pretok_load(t, tok_jget(root, "pre_tokenizer"), "pre_tokenizer"))) return rc;
    t->has_post = !tok_jnull(tok_jget(root, "post_processor"));
    if ((rc = load_post(t, tok_jget(root, "post_processor"), "post_processor", 0))) return rc;
    if ((rc = tok_dec_load(t, tok_jget(root, "decoder"), "decoder"))) return rc;
    return 0;
}
