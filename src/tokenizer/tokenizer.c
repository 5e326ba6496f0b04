/* tokenizer: loading entry points, tok_encode, workspaces and the vocabulary
 * accessors (the pipeline is described in tok_internal.h).
 *
 * Workspaces: tok_encode needs mutable scratch (PCRE2 match data and JIT
 * stack, buffers, the BPE word cache). The tokenizer keeps one, taken with an
 * atomic flag; a caller that finds it busy gets a fresh one for the call, so
 * concurrent use is safe and single-threaded use keeps a warm cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/file.h"
#include "tok_internal.h"

#define TOK_MAX_FILE ((size_t)1 << 30)
#define WS_KEEP_SYMS ((size_t)1 << 20)

/* ---- workspaces ---- */

tok_ws *tok_ws_new(void) {
    tok_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->md = pcre2_match_data_create(16, NULL);
    ws->mctx = pcre2_match_context_create(NULL);
    ws->jstack = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, NULL);
    if (!ws->md || !ws->mctx) {
        tok_ws_free(ws);
        return NULL;
    }
    if (ws->jstack) pcre2_jit_stack_assign(ws->mctx, NULL, ws->jstack);
    return ws;
}

void tok_ws_free(tok_ws *ws) {
    if (!ws) return;
    if (ws->md) pcre2_match_data_free(ws->md);
    if (ws->mctx) pcre2_match_context_free(ws->mctx);
    if (ws->jstack) pcre2_jit_stack_free(ws->jstack);
    tok_buf_free(&ws->nbuf[0]);
    tok_buf_free(&ws->nbuf[1]);
    tok_buf_free(&ws->seg);
    tok_ids_free(&ws->tmp_ids);
    for (size_t i = 0; i <= TOK_MAX_STEPS; i++) {
        tok_buf_free(&ws->sbuf[i][0]);
        tok_buf_free(&ws->sbuf[i][1]);
        free(ws->spans[i]);
    }
    free(ws->syms);
    free(ws->heap);
    free(ws->wids);
    free(ws->cache);
    tok_buf_free(&ws->cache_keys);
    free(ws->cache_ids);
    free(ws);
}

tok_ws *tok_ws_acquire(const tok_tokenizer *t) {
    tok_tokenizer *m = (tok_tokenizer *)t; /* the workspace slot is the only mutable part */
    if (!atomic_flag_test_and_set(&m->ws_busy)) {
        if (!m->ws && (m->ws = tok_ws_new())) m->ws->shared = 1;
        if (m->ws) return m->ws;
        atomic_flag_clear(&m->ws_busy);
        return NULL;
    }
    return tok_ws_new();
}

void tok_ws_release(const tok_tokenizer *t, tok_ws *ws) {
    tok_tokenizer *m = (tok_tokenizer *)t;
    if (!ws->shared) { /* a one-off; m->ws may be in another thread's hands: do not read it */
        tok_ws_free(ws);
        return;
    }
    if (ws->syms_cap > WS_KEEP_SYMS) {
        /* one huge word (e.g. a SentencePiece text without pre-tokenizer): give it back */
        free(ws->syms);
        free(ws->heap);
        ws->syms = NULL;
        ws->heap = NULL;
        ws->syms_cap = ws->heap_cap = 0;
    }
    atomic_flag_clear(&m->ws_busy);
}

int tok_spans_reserve(tok_ws *ws, int depth, size_t n) {
    if (n <= ws->spans_cap[depth]) return 0;
    size_t nc = ws->spans_cap[depth] ? ws->spans_cap[depth] : 64;
    while (nc < n) nc *= 2;
    tok_span *ns = realloc(ws->spans[depth], nc * sizeof *ns);
    if (!ns) return vc_errf(VC_ENOMEM, "out of memory");
    ws->spans[depth] = ns;
    ws->spans_cap[depth] = nc;
    return 0;
}

/* ---- loading ---- */

void tok_free(tok_tokenizer *t) {
    if (!t) return;
    free(t->what);
    tok_buf_free(&t->pool);
    free(t->id_off);
    free(t->id_len);
    free(t->id_flags);
    free(t->mid_off);
    free(t->mid_len);
    tok_smap_free(&t->vocab);
    tok_pmap_free(&t->merges);
    free(t->cs_prefix);
    free(t->eow_suffix);
    free(t->char_id);
    free(t->added);
    tok_smap_free(&t->added_map);
    tok_trie_free(&t->trie_raw);
    tok_trie_free(&t->trie_norm);
    for (size_t i = 0; i < t->n_norms; i++) tok_norm_free(&t->norms[i]);
    for (size_t i = 0; i < t->n_pretoks; i++) tok_pretok_free(&t->pretoks[i]);
    for (size_t i = 0; i < t->n_posts; i++) {
        for (size_t j = 0; j < t->posts[i].n; j++) free(t->posts[i].items[j].ids);
        free(t->posts[i].items);
    }
    for (size_t i = 0; i < t->n_decs; i++) tok_dec_free(&t->decs[i]);
    tok_config_free(&t->cfg);
    tok_ws_free(t->ws);
    free(t);
}

int tok_load_mem(const char *json, size_t len, const char *what, const char *config, size_t config_len,
                 tok_tokenizer **out) {
    *out = NULL;
    if (!what) what = "tokenizer.json";
    tok_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return vc_errf(VC_ENOMEM, "out of memory");
    atomic_flag_clear(&t->ws_busy);
    for (int i = 0; i < 256; i++) t->trie_raw.root[i] = t->trie_norm.root[i] = -1;
    t->cfg.add_bos = t->cfg.add_eos = -1;
    t->cfg.max_len = -1;
    t->what = tok_strndup(what, strlen(what));
    int rc = t->what ? 0 : vc_errf(VC_ENOMEM, "out of memory");
    tok_json *doc = NULL;
    if (!rc) rc = tok_json_parse(json, len, what, &doc);
    if (!rc) rc = tok_load_components(t, tok_json_root(doc));
    tok_json_free(doc);
    doc = NULL;
    if (!rc && config) {
        size_t wl = strlen(what);
        char *cwhat = malloc(wl + 32);
        if (!cwhat) rc = vc_errf(VC_ENOMEM, "out of memory");
        else {
            /* ".../tokenizer.json" -> ".../tokenizer_config.json" for messages */
            const char *slash = strrchr(what, '/');
            size_t dl = slash ? (size_t)(slash - what) + 1 : 0;
            memcpy(cwhat, what, dl);
            strcpy(cwhat + dl, "tokenizer_config.json");
            rc = tok_json_parse(config, config_len, cwhat, &doc);
            if (!rc) rc = tok_config_load(t, tok_json_root(doc), cwhat);
            tok_json_free(doc);
            free(cwhat);
        }
    }
    if (!rc) rc = tok_added_build_tries(t);
    if (rc) {
        tok_free(t);
        return rc;
    }
    for (size_t i = t->n_ids; i-- > 0;)
        if (t->id_len[i] >= 0) {
            t->vocab_size = i + 1;
            break;
        }
    *out = t;
    return 0;
}

int tok_load_dir(const char *dir, tok_tokenizer **out) {
    *out = NULL;
    size_t dl = strlen(dir);
    char *path = malloc(dl + 32), *cpath = malloc(dl + 32);
    char *json = NULL, *cfg = NULL;
    size_t len = 0, clen = 0;
    int rc = 0;
    if (!path || !cpath) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto done;
    }
    snprintf(path, dl + 32, "%s/tokenizer.json", dir);
    snprintf(cpath, dl + 32, "%s/tokenizer_config.json", dir);
    if ((rc = vc_read_file(path, TOK_MAX_FILE, &json, &len))) goto done;
    if (vc_file_exists(cpath) && (rc = vc_read_file(cpath, TOK_MAX_FILE, &cfg, &clen))) goto done;
    rc = tok_load_mem(json, len, path, cfg, clen, out);
done:
    free(path);
    free(cpath);
    free(json);
    free(cfg);
    return rc;
}

/* ---- encoding ---- */

typedef struct {
    const tok_tokenizer *t;
    tok_ws *ws;
    tok_ids *out;
    const char *text; /* the string being split */
    int at_start, lead_removed;
} enc_ctx;

static int norm_piece(void *vctx, size_t a, size_t b, int32_t id) {
    enc_ctx *c = vctx;
    if (id >= 0) return tok_ids_push(c->out, id);
    tok_piece pc = {c->text + a, b - a, c->at_start && a == 0 && !c->lead_removed};
    return tok_pretok_run(c->t, c->ws, 0, pc, c->out);
}

static int raw_piece(void *vctx, size_t a, size_t b, int32_t id) {
    enc_ctx *c = vctx;
    if (id >= 0) return tok_ids_push(c->out, id);
    int rc = tok_normalize(c->t, c->ws, c->text + a, b - a, &c->ws->seg, &c->lead_removed);
    if (rc) return rc;
    enc_ctx n = *c;
    n.text = c->ws->seg.s;
    n.at_start = a == 0;
    if (!c->t->trie_norm.n) return norm_piece(&n, 0, c->ws->seg.len, -1);
    return tok_added_split(c->t, &c->t->trie_norm, n.text, c->ws->seg.len, norm_piece, &n);
}

static int encode_text(const tok_tokenizer *t, tok_ws *ws, const char *text, size_t len, tok_ids *out) {
    enc_ctx c = {t, ws, out, text, 0, 0};
    if (!len) return 0;
    if (!t->trie_raw.n) return raw_piece(&c, 0, len, -1);
    return tok_added_split(t, &t->trie_raw, text, len, raw_piece, &c);
}

static int apply_template(const tok_tmpl *tp, const int32_t *ids, size_t n, tok_ids *out) {
    int rc;
    for (size_t i = 0; i < tp->n; i++) {
        const tok_titem *it = &tp->items[i];
        if ((rc = it->is_seq ? tok_ids_append(out, ids, n) : tok_ids_append(out, it->ids, it->n))) return rc;
    }
    return 0;
}

int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int add_special, tok_ids *out) {
    out->n = 0;
    size_t bad = tok_u8check(text, len);
    if (bad != len) return vc_errf(VC_EINVAL, "input text is not valid UTF-8 (byte %zu)", bad);
    tok_ws *ws = tok_ws_acquire(t);
    if (!ws) return vc_errf(VC_ENOMEM, "out of memory");
    int rc = 0;
    size_t nseq = 0;
    if (add_special && t->n_posts == 1)
        for (size_t i = 0; i < t->posts[0].n; i++) nseq += t->posts[0].items[i].is_seq;
    if (!add_special || !t->n_posts) {
        rc = encode_text(t, ws, text, len, out);
    } else if (nseq == 1) {
        /* one template with one $A: write around it in place */
        const tok_tmpl *tp = &t->posts[0];
        for (size_t i = 0; i < tp->n && !rc; i++) {
            const tok_titem *it = &tp->items[i];
            rc = it->is_seq ? encode_text(t, ws, text, len, out) : tok_ids_append(out, it->ids, it->n);
        }
    } else {
        tok_ids *cur = &ws->tmp_ids;
        cur->n = 0;
        rc = encode_text(t, ws, text, len, cur);
        for (size_t p = 0; p < t->n_posts && !rc; p++) {
            out->n = 0;
            rc = apply_template(&t->posts[p], cur->ids, cur->n, out);
            if (!rc && p + 1 < t->n_posts) {
                cur->n = 0;
                rc = tok_ids_append(cur, out->ids, out->n);
            }
        }
    }
    tok_ws_release(t, ws);
    if (rc) out->n = 0;
    return rc;
}

int tok_encode_ordinary(const tok_tokenizer *t, const char *text, size_t len, tok_ids *out) {
    out->n = 0;
    size_t bad = tok_u8check(text, len);
    if (bad != len) return vc_errf(VC_EINVAL, "input text is not valid UTF-8 (byte %zu)", bad);
    if (!len) return 0;
    tok_ws *ws = tok_ws_acquire(t);
    if (!ws) return vc_errf(VC_ENOMEM, "out of memory");
    enc_ctx c = {t, ws, out, text, 0, 0};
    int rc = tok_normalize(t, ws, text, len, &ws->seg, &c.lead_removed);
    if (!rc) {
        c.text = ws->seg.s;
        c.at_start = 1;
        rc = norm_piece(&c, 0, ws->seg.len, -1);
    }
    tok_ws_release(t, ws);
    if (rc) out->n = 0;
    return rc;
}

/* ---- vocabulary ---- */

size_t tok_vocab_size(const tok_tokenizer *t) { return t->vocab_size; }

const char *tok_id_to_token(const tok_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || (size_t)id >= t->n_ids || t->id_len[id] < 0) return NULL;
    if (len) *len = (size_t)t->id_len[id];
    return t->pool.s + t->id_off[id];
}

int32_t tok_token_to_id(const tok_tokenizer *t, const char *token, size_t len) {
    int32_t id = tok_smap_get(&t->added_map, t->pool.s, token, len);
    return id >= 0 ? id : tok_smap_get(&t->vocab, t->pool.s, token, len);
}

int tok_is_special(const tok_tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->n_ids && (t->id_flags[id] & TOK_F_SPECIAL);
}

int tok_is_added(const tok_tokenizer *t, int32_t id) {
    return id >= 0 && (size_t)id < t->n_ids && (t->id_flags[id] & TOK_F_ADDED);
}

/* ---- token bytes (tok_token_bytes) ----
 *
 * The decoder chain of decode.c, walked for one token as if earlier tokens had come (so Metaspace
 * does not drop the first token's space and a Strip after a Fuse has nothing to strip at the
 * start), with the bytes kept raw instead of through from_utf8_lossy. Steps after a Fuse or
 * ByteLevel see fragments of one fused token (frag); there a Replace is applied to the token alone
 * (a literal spanning two tokens is not seen) and ByteFallback leaves "<0x..>" as text, as the chain
 * does mid-text. Character steps skip bytes that are not valid UTF-8 (the decoder would have made
 * them U+FFFD). */

/* "<0xHH>" -> the byte (Rust's u8::from_str_radix, which takes a leading '+'). */
static int tb_byte_token(const char *p, size_t n, unsigned char *out) {
    if (n != 6 || memcmp(p, "<0x", 3) != 0 || p[5] != '>') return 0;
    int v = 0;
    for (int i = 3; i < 5; i++) {
        char h = p[i];
        int d;
        if (i == 3 && h == '+') continue;
        if (h >= '0' && h <= '9') d = h - '0';
        else if (h >= 'a' && h <= 'f') d = h - 'a' + 10;
        else if (h >= 'A' && h <= 'F') d = h - 'A' + 10;
        else return 0;
        v = v * 16 + d;
    }
    *out = (unsigned char)v;
    return 1;
}

static int tb_valid(const tok_buf *b) { return tok_u8check(b->s, b->len) == b->len; }

/* Replace every match of d's pattern in cur (into o). */
static int tb_replace(const tok_tokenizer *t, const tok_dec *d, const tok_buf *cur, tok_buf *o) {
    o->len = 0;
    if (tok_buf_put(o, "", 0)) return VC_ENOMEM;
    if (!d->pat.is_regex) {
        const char *pat = d->pat.lit;
        size_t pl = d->pat.lit_len, i = 0;
        while (i < cur->len) {
            if (pl && cur->len - i >= pl && memcmp(cur->s + i, pat, pl) == 0) {
                if (tok_buf_put(o, d->content, d->content_len)) return VC_ENOMEM;
                i += pl;
            } else if (tok_buf_put(o, cur->s + i++, 1)) {
                return VC_ENOMEM;
            }
        }
        return 0;
    }
    tok_ws *ws = tok_ws_acquire(t);
    if (!ws) return vc_errf(VC_ENOMEM, "out of memory");
    tok_iter it = {0};
    size_t prev = 0, a, b;
    int rc;
    while ((rc = tok_pattern_next(&d->pat, ws, cur->s, cur->len, &it, &a, &b)) == 1) {
        if (tok_buf_put(o, cur->s + prev, a - prev) || tok_buf_put(o, d->content, d->content_len)) {
            rc = VC_ENOMEM;
            break;
        }
        prev = b;
    }
    tok_ws_release(t, ws);
    if (rc < 0) return rc;
    return tok_buf_put(o, cur->s + prev, cur->len - prev);
}

/* One decoder step on cur (result in o; *frag updated). 0: o holds the result; 1: cur unchanged. */
static int tb_step(const tok_tokenizer *t, const tok_dec *d, int *frag, const tok_buf *cur, tok_buf *o) {
    o->len = 0;
    if (tok_buf_put(o, "", 0)) return VC_ENOMEM;
    switch (d->type) {
    case TD_FUSE: *frag = 1; return 1;
    case TD_BYTELEVEL: {
        *frag = 1;
        if (!tb_valid(cur)) return 1;
        for (size_t i = 0; i < cur->len;) {
            uint32_t cp;
            i += tok_u8dec(cur->s + i, &cp);
            if (cp >= 0x144 || t->bl_dec[cp] < 0) return 1; /* a char outside the alphabet: raw UTF-8 */
        }
        for (size_t i = 0; i < cur->len;) {
            uint32_t cp;
            i += tok_u8dec(cur->s + i, &cp);
            char b = (char)t->bl_dec[cp];
            if (tok_buf_put(o, &b, 1)) return VC_ENOMEM;
        }
        return 0;
    }
    case TD_BYTEFALLBACK: {
        unsigned char b;
        if (*frag || !tb_byte_token(cur->s, cur->len, &b)) return 1;
        return tok_buf_put(o, &b, 1) ? VC_ENOMEM : 0;
    }
    case TD_METASPACE: {
        if (!tb_valid(cur)) return 1;
        int drop = *frag && d->scheme != TM_NEVER; /* after a Fuse every fragment is the first token's */
        for (size_t i = 0; i < cur->len;) {
            uint32_t cp;
            size_t l = tok_u8dec(cur->s + i, &cp);
            if (cp != d->ch ? tok_buf_put(o, cur->s + i, l) : !drop && tok_buf_put(o, " ", 1)) return VC_ENOMEM;
            i += l;
        }
        return 0;
    }
    case TD_STRIP: {
        if (*frag || !tb_valid(cur)) return 1; /* mid-text, a fused text's ends are elsewhere */
        size_t a, b;
        tok_strip_span(d, cur->s, cur->len, &a, &b);
        return tok_buf_put(o, cur->s + a, b - a) ? VC_ENOMEM : 0;
    }
    case TD_REPLACE:
        if (d->pat.is_regex && !tb_valid(cur)) return 1;
        return tb_replace(t, d, cur, o);
    default: return 1;
    }
}

int tok_token_bytes(const tok_tokenizer *t, int32_t id, char **bytes, size_t *len) {
    *bytes = NULL;
    *len = 0;
    tok_buf cur = {0}, nxt = {0};
    int rc = VC_OK;
    if (tok_buf_put(&cur, "", 0)) goto oom;
    if (id < 0 || (size_t)id >= t->n_ids || t->id_len[id] < 0 || (t->id_flags[id] & TOK_F_SPECIAL)) goto done;
    const char *p = t->pool.s + t->id_off[id];
    size_t n = (size_t)t->id_len[id];
    if (!t->has_decoder) { /* tokens.join(" ") */
        if (tok_buf_put(&cur, " ", 1) || tok_buf_put(&cur, p, n)) goto oom;
        goto done;
    }
    if (tok_buf_put(&cur, p, n)) goto oom;
    int frag = 0;
    for (size_t k = 0; k < t->n_decs; k++) {
        rc = tb_step(t, &t->decs[k], &frag, &cur, &nxt);
        if (rc < 0) goto fail;
        if (rc == 0) {
            tok_buf sw = cur;
            cur = nxt;
            nxt = sw;
        }
        rc = VC_OK;
    }
done:
    tok_buf_free(&nxt);
    *bytes = cur.s;
    *len = cur.len;
    return VC_OK;
oom:
    rc = vc_errf(VC_ENOMEM, "out of memory");
fail:
    tok_buf_free(&cur);
    tok_buf_free(&nxt);
    return rc;
}
