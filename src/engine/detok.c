#include "engine/detok.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

static int append(dt_text *t, const char *p, size_t n) {
    sb_raw(&t->s, p, n);
    return t->s.oom ? vc_errf(VC_ENOMEM, "out of memory") : VC_OK;
}

/* Characters (code points) of a UTF-8 string. */
static size_t nchars(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int dt_init(dt_text *t, const tok_tokenizer *tok, const eng_sampling_params *sp, const int32_t *prompt,
            int n_prompt) {
    memset(t, 0, sizeof *t);
    t->stop = sp->stop;
    t->n_stop = sp->n_stop;
    t->include_stop = sp->include_stop_str_in_output;
    if (!t->include_stop)
        for (int k = 0; k < sp->n_stop; k++) {
            int c = (int)nchars(sp->stop[k]) - 1;
            if (c > t->hold_chars) t->hold_chars = c;
        }
    if (!tok) return append(t, "", 0); /* no tokenizer (token-id prompts only): no text */
    unsigned fl = sp->skip_special_tokens ? TOK_DECODE_SKIP_SPECIAL : 0;
    if (!sp->spaces_between_special_tokens) fl |= TOK_DECODE_NO_SPACES_SPECIAL;
    int rc = tok_stream_init(tok, fl, &t->st);
    if (!rc && n_prompt > 0) rc = tok_stream_prime(t->st, prompt, (size_t)n_prompt);
    if (!rc) rc = append(t, "", 0);
    if (rc) dt_free(t);
    return rc;
}

/* vLLM's StopChecker.check_stop_strings: the first stop string (in list
 * order) found in the text that the new piece could complete. */
static int check_stop(dt_text *t, size_t before) {
    for (int k = 0; k < t->n_stop; k++) {
        size_t sl = strlen(t->stop[k]);
        if (!sl) continue;
        size_t from = before + 1 > sl ? before + 1 - sl : 0;
        if (from > t->s.n) continue;
        const char *hit = strstr(t->s.b + from, t->stop[k]);
        if (hit) {
            t->stopped = 1;
            t->stop_index = k;
            t->cut = (size_t)(hit - t->s.b) + (t->include_stop ? sl : 0);
            return 1;
        }
    }
    return 0;
}

int dt_push(dt_text *t, int32_t token) {
    if (t->stopped || t->finished || !t->st) return 0;
    const char *piece;
    size_t n, before = t->s.n;
    int rc = tok_stream_push(t->st, token, &piece, &n);
    if (!rc) rc = append(t, piece, n);
    if (rc) return rc;
    return n ? check_stop(t, before) : 0;
}

int dt_finish(dt_text *t) {
    if (t->stopped || t->finished) {
        t->finished = 1;
        return 0;
    }
    t->finished = 1;
    if (!t->st) return 0;
    const char *piece;
    size_t n, before = t->s.n;
    int rc = tok_stream_flush(t->st, &piece, &n);
    if (!rc) rc = append(t, piece, n);
    if (rc) return rc;
    return n ? check_stop(t, before) : 0;
}

size_t dt_len(const dt_text *t) { return t->stopped ? t->cut : t->s.n; }

const char *dt_str(const dt_text *t) { return t->s.b ? t->s.b : ""; }

void dt_delta(dt_text *t, const char **p, size_t *n) {
    size_t end = dt_len(t);
    if (!t->stopped && !t->finished && t->hold_chars > 0) {
        int h = t->hold_chars;
        while (end > 0 && h > 0) { /* back over whole characters */
            end--;
            if (((unsigned char)t->s.b[end] & 0xC0) != 0x80) h--;
        }
    }
    *p = t->s.b + t->sent;
    *n = end > t->sent ? end - t->sent : 0;
    if (end > t->sent) t->sent = end;
}

const char *dt_stop_str(const dt_text *t) { return t->stopped ? t->stop[t->stop_index] : NULL; }

void dt_free(dt_text *t) {
    tok_stream_free(t->st);
    sb_free(&t->s);
    memset(t, 0, sizeof *t);
}

int dt_add_bad_words(const tok_tokenizer *tok, const cJSON *words, eng_sampling_params *sp) {
    if (!cJSON_IsArray(words)) return vc_errf(VC_EINVAL, "'bad_words' must be a list of strings");
    if (!tok) return vc_errf(VC_EINVAL, "'bad_words' needs tokenizer.json in the model folder");
    const cJSON *w;
    cJSON_ArrayForEach(w, words) {
        if (!cJSON_IsString(w)) return vc_errf(VC_EINVAL, "'bad_words' must be a list of strings");
        const char *word = w->valuestring;
        while (*word == ' ' || *word == '\t' || *word == '\n' || *word == '\r') word++;
        size_t n = strlen(word);
        char *spaced = malloc(n + 2);
        if (!spaced) return vc_errf(VC_ENOMEM, "out of memory");
        spaced[0] = ' ';
        memcpy(spaced + 1, word, n + 1);
        tok_ids a = {0}, b = {0};
        int rc = tok_encode(tok, word, n, 0, &a);
        if (!rc) rc = tok_encode(tok, spaced, n + 1, 0, &b);
        free(spaced);
        int add_b = !rc && b.n > 0 && a.n > 0 && b.n == a.n && b.ids[0] != a.ids[0];
        for (int k = 0; !rc && k < 1 + add_b; k++) {
            tok_ids *v = k ? &b : &a;
            if (v->n == 0) continue;
            int32_t **nb = realloc(sp->bad_words, sizeof *nb * (size_t)(sp->n_bad_words + 1));
            if (nb) sp->bad_words = nb;
            int *nl = realloc(sp->bad_words_len, sizeof *nl * (size_t)(sp->n_bad_words + 1));
            if (nl) sp->bad_words_len = nl;
            if (!nb || !nl) {
                rc = vc_errf(VC_ENOMEM, "out of memory");
                break;
            }
            sp->bad_words[sp->n_bad_words] = v->ids;
            sp->bad_words_len[sp->n_bad_words++] = (int)v->n;
            v->ids = NULL;
        }
        tok_ids_free(&a);
        tok_ids_free(&b);
        if (rc) return rc;
    }
    return VC_OK;
}
