/* detok: tok_decode and incremental detokenization (tok_stream).
 *
 * Both run ids through the same decoder chain (decode.c): a full decode is a
 * stream fed every id and then ended, so the concatenated stream pieces equal
 * the full decode by construction, and each id costs O(its token length)
 * plus whatever a step had held back. Per id (as Rust's decode): look up the
 * added token or model vocabulary string (ids without one are skipped), drop
 * special tokens with TOK_DECODE_SKIP_SPECIAL, feed the rest.
 *
 * TOK_DECODE_NO_SPACES_SPECIAL is vLLM's spaces_between_special_tokens=False
 * for fast tokenizers (FastIncrementalDetokenizer): an added token that
 * follows another added token contributes its raw content instead of what the
 * decoder made of it. With HF's own decoders this rarely changes anything;
 * HF's decode() itself ignores the flag.
 *
 * TOK_DECODE_CLEANUP is transformers' clean_up_tokenization, applied to a
 * full decode only (vLLM never applies it to generated text). */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "tok_internal.h"

struct tok_stream {
    const tok_tokenizer *t;
    unsigned flags;
    tok_buf out;
    tok_chain chain;
    int prev_added;
    size_t skip; /* bytes still to drop: prompt text the chain held back while priming */
};

int tok_stream_init(const tok_tokenizer *t, unsigned flags, tok_stream **out) {
    *out = NULL;
    tok_stream *s = calloc(1, sizeof *s);
    if (!s) return vc_errf(VC_ENOMEM, "out of memory");
    s->t = t;
    s->flags = flags;
    s->chain.t = t;
    s->chain.out = &s->out;
    if (tok_buf_put(&s->out, "", 0)) {
        free(s);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    *out = s;
    return 0;
}

/* Appends the text of one id to s->out. */
static int push_id(tok_stream *s, int32_t id) {
    const tok_tokenizer *t = s->t;
    if (id < 0 || (size_t)id >= t->n_ids || t->id_len[id] < 0) return 0; /* no such token: skipped, as in HF */
    uint8_t f = t->id_flags[id];
    if ((s->flags & TOK_DECODE_SKIP_SPECIAL) && (f & TOK_F_SPECIAL)) return 0;
    const char *p = t->pool.s + t->id_off[id];
    size_t n = (size_t)t->id_len[id];
    int added = (f & TOK_F_ADDED) != 0;
    int raw = (s->flags & TOK_DECODE_NO_SPACES_SPECIAL) && !(s->flags & TOK_DECODE_SKIP_SPECIAL) && added &&
              s->prev_added;
    s->prev_added = added;
    if (!raw) return tok_chain_token(&s->chain, p, n);
    size_t mark = s->out.len;
    int rc = tok_chain_token(&s->chain, p, n);
    if (rc) return rc;
    s->out.len = mark;
    return tok_buf_put(&s->out, p, n);
}

/* The prompt's text is dropped, including what the chain still holds at the
 * end of the prompt (an open byte-fallback run, a pending Strip): its length
 * is the prompt's full decode minus what priming released, and that many
 * bytes are dropped from the next pieces. (If output bytes then change how a
 * held run decodes, e.g. by making it invalid UTF-8, the boundary falls where
 * the prompt alone would have put it.) */
int tok_stream_prime(tok_stream *s, const int32_t *ids, size_t n) {
    size_t released = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = push_id(s, ids[i]);
        released += s->out.len;
        s->out.len = 0;
        s->out.s[0] = 0;
        if (rc) return rc;
    }
    tok_text full = {0};
    int rc = tok_decode(s->t, ids, n, s->flags & ~(unsigned)(TOK_DECODE_CLEANUP | TOK_DECODE_CONFIG_CLEANUP), &full);
    if (rc == 0 && full.len > released) s->skip += full.len - released;
    tok_text_free(&full);
    return rc;
}

static void drop_skipped(tok_stream *s) {
    if (!s->skip || !s->out.len) return;
    size_t d = s->skip < s->out.len ? s->skip : s->out.len;
    memmove(s->out.s, s->out.s + d, s->out.len - d + 1);
    s->out.len -= d;
    s->skip -= d;
}

int tok_stream_push(tok_stream *s, int32_t id, const char **piece, size_t *piece_len) {
    s->out.len = 0;
    s->out.s[0] = 0;
    int rc = push_id(s, id);
    drop_skipped(s);
    *piece = s->out.s;
    *piece_len = s->out.len;
    return rc;
}

int tok_stream_flush(tok_stream *s, const char **piece, size_t *piece_len) {
    s->out.len = 0;
    s->out.s[0] = 0;
    int rc = tok_chain_end(&s->chain);
    drop_skipped(s);
    s->skip = 0;
    s->prev_added = 0;
    *piece = s->out.s;
    *piece_len = s->out.len;
    return rc;
}

void tok_stream_reset(tok_stream *s) {
    tok_chain_reset(&s->chain);
    s->prev_added = 0;
    s->skip = 0;
    s->out.len = 0;
    s->out.s[0] = 0;
}

void tok_stream_free(tok_stream *s) {
    if (!s) return;
    tok_chain_free(&s->chain);
    tok_buf_free(&s->out);
    free(s);
}

/* transformers' PreTrainedTokenizerBase.clean_up_tokenization: these replaces, in order */
static int cleanup(tok_buf *b) {
    static const char *const from[] = {" .", " ?", " !", " ,", " ' ", " n't", " 'm", " 's", " 've", " 're"};
    static const char *const to[] = {".", "?", "!", ",", "'", "n't", "'m", "'s", "'ve", "'re"};
    tok_buf tmp = {0};
    for (size_t r = 0; r < sizeof from / sizeof from[0]; r++) {
        size_t fl = strlen(from[r]), tl = strlen(to[r]);
        if (!memmem(b->s, b->len, from[r], fl)) continue;
        tmp.len = 0;
        size_t i = 0;
        while (i < b->len) {
            const char *f = memmem(b->s + i, b->len - i, from[r], fl);
            size_t stop = f ? (size_t)(f - b->s) : b->len;
            if (tok_buf_put(&tmp, b->s + i, stop - i)) goto oom;
            if (!f) break;
            if (tok_buf_put(&tmp, to[r], tl)) goto oom;
            i = stop + fl;
        }
        tok_buf sw = *b;
        *b = tmp;
        tmp = sw;
    }
    tok_buf_free(&tmp);
    return 0;
oom:
    tok_buf_free(&tmp);
    return vc_errf(VC_ENOMEM, "out of memory");
}

int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, tok_text *out) {
    tok_stream s = {0};
    s.t = t;
    s.flags = flags;
    s.chain.t = t;
    s.chain.out = &s.out;
    /* decode straight into the caller's buffer */
    s.out.s = out->s;
    s.out.cap = out->cap;
    s.out.len = 0;
    int rc = tok_buf_put(&s.out, "", 0);
    for (size_t i = 0; i < n && !rc; i++) rc = push_id(&s, ids[i]);
    if (!rc) rc = tok_chain_end(&s.chain);
    tok_chain_free(&s.chain);
    if (!rc && ((flags & TOK_DECODE_CLEANUP) || ((flags & TOK_DECODE_CONFIG_CLEANUP) && t->cfg.cleanup)))
        rc = cleanup(&s.out);
    out->s = s.out.s;
    out->cap = s.out.cap;
    out->len = rc ? 0 : s.out.len;
    if (out->s) out->s[out->len] = 0;
    return rc;
}
