/* params: vLLM's SamplingParams defaults, validation and post-init
 * normalisation, and deep copy/free of a request's sampling parameters.
 *
 * Validation follows vllm/sampling_params.py: _verify_args (ranges, in the
 * same order and with the same wording), _verify_greedy_sampling, and the
 * vocabulary checks of verify() (_validate_logit_bias, _validate_stop_token_ids,
 * _validate_allowed_token_ids) plus update_from_tokenizer's bad-word check.
 * Numbers in messages are printed as Python prints them ("1.5", "0.0", "inf",
 * lists as "[3, 7]"), so messages read exactly like vLLM's. */
#include "engine/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "grammar/grammar.h"

#define GREEDY_EPS 1e-5f /* vLLM's _SAMPLING_EPS */
#define MIN_TEMP 1e-2f   /* vLLM's _MAX_TEMP: smaller positive temperatures are raised to it */

void eng_params_default(eng_sampling_params *p) {
    memset(p, 0, sizeof *p);
    p->n = 1;
    p->temperature = 1.0f;
    p->top_p = 1.0f;
    p->top_k = 0;
    p->min_p = 0.0f;
    p->repetition_penalty = 1.0f;
    p->max_tokens = 16;
    p->logprobs = -1;
    p->prompt_logprobs = -1;
    p->skip_special_tokens = 1;
    p->spaces_between_special_tokens = 1;
}

/* ---- Python-style formatting ---- */

typedef struct {
    char s[64];
} pyfloat;

/* repr(float(x)) for a float32 value: the shortest decimal that reads back as
 * the same float, fixed notation for exponents in [-4, 16), else 1e+16 style. */
static pyfloat py_float(float x) {
    pyfloat r;
    if (isnan(x)) {
        snprintf(r.s, sizeof r.s, "nan");
        return r;
    }
    if (isinf(x)) {
        snprintf(r.s, sizeof r.s, x < 0 ? "-inf" : "inf");
        return r;
    }
    if (x == 0.0f) {
        snprintf(r.s, sizeof r.s, signbit(x) ? "-0.0" : "0.0");
        return r;
    }
    int prec = 1;
    char e[40];
    for (; prec < 9; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, (double)x);
        if (strtof(e, NULL) == x) break;
    }
    snprintf(e, sizeof e, "%.*e", prec - 1, (double)x);
    int exp10 = atoi(strchr(e, 'e') + 1);
    if (exp10 >= -4 && exp10 < 16) {
        int dec = prec - 1 - exp10;
        snprintf(r.s, sizeof r.s, "%.*f", dec > 0 ? dec : 0, (double)x);
        if (!strchr(r.s, '.')) strncat(r.s, ".0", sizeof r.s - strlen(r.s) - 1);
    } else {
        /* mantissa without trailing zeros, exponent with sign and >= 2 digits */
        char *m = e, *ep = strchr(e, 'e');
        *ep = 0;
        if (strchr(m, '.')) {
            char *z = ep - 1;
            while (*z == '0') *z-- = 0;
            if (*z == '.') *z = 0;
        }
        snprintf(r.s, sizeof r.s, "%se%c%02d", m, exp10 < 0 ? '-' : '+', abs(exp10));
    }
    return r;
}

/* "[a, b, c]" of the ids in `ids` that are out of [0, vocab), truncated to fit. */
static void py_bad_id_list(char *buf, size_t cap, const int32_t *ids, int n, int vocab) {
    size_t len = 0;
    buf[len++] = '[';
    int first = 1;
    for (int i = 0; i < n; i++) {
        if (ids[i] >= 0 && ids[i] < vocab) continue;
        char item[24];
        int w = snprintf(item, sizeof item, "%s%d", first ? "" : ", ", (int)ids[i]);
        if (len + (size_t)w + 6 >= cap) {
            memcpy(buf + len, ", ...", 5);
            len += 5;
            break;
        }
        memcpy(buf + len, item, (size_t)w);
        len += (size_t)w;
        first = 0;
    }
    buf[len++] = ']';
    buf[len] = 0;
}

static int any_out_of_vocab(const int32_t *ids, int n, int vocab) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab) return 1;
    return 0;
}

/* Array fields must agree with their counts (a parser bug otherwise). */
static int check_array(const char *name, const void *arr, int n) {
    if (n < 0) return vc_errf(VC_EINVAL, "%s: negative count %d", name, n);
    if (n > 0 && !arr) return vc_errf(VC_EINVAL, "%s: %d entries but no array", name, n);
    return VC_OK;
}

int eng_params_validate(const eng_sampling_params *p, int vocab_size) {
    int rc;
    if ((rc = check_array("stop_token_ids", p->stop_token_ids, p->n_stop_token_ids)) ||
        (rc = check_array("stop", p->stop, p->n_stop)) ||
        (rc = check_array("logit_bias", p->logit_bias, p->n_logit_bias)) ||
        (rc = check_array("allowed_token_ids", p->allowed_token_ids, p->n_allowed)) ||
        (rc = check_array("bad_words", p->bad_words, p->n_bad_words)) ||
        (rc = check_array("bad_words", p->bad_words_len, p->n_bad_words)))
        return rc;

    if (p->grammar_after_reasoning &&
        (p->reasoning_end_id < 0 || p->reasoning_end_id >= vocab_size || p->reasoning_start_id >= vocab_size))
        return vc_errf(VC_EINVAL, "grammar_after_reasoning: the reasoning token ids %d / %d are not in the vocabulary",
                       (int)p->reasoning_end_id, (int)p->reasoning_start_id);

    /* _verify_args, in vLLM's order */
    if (p->n < 1) return vc_errf(VC_EINVAL, "n must be at least 1, got %d.", p->n);
    if (!(p->presence_penalty >= -2.0f && p->presence_penalty <= 2.0f))
        return vc_errf(VC_EINVAL, "presence_penalty must be in [-2, 2], got %s.", py_float(p->presence_penalty).s);
    if (!(p->frequency_penalty >= -2.0f && p->frequency_penalty <= 2.0f))
        return vc_errf(VC_EINVAL, "frequency_penalty must be in [-2, 2], got %s.", py_float(p->frequency_penalty).s);
    if (!isfinite(p->repetition_penalty))
        return vc_errf(VC_EINVAL, "repetition_penalty must be a finite number, got %s.",
                       py_float(p->repetition_penalty).s);
    if (p->repetition_penalty <= 0.0f)
        return vc_errf(VC_EINVAL, "repetition_penalty must be greater than zero, got %s.",
                       py_float(p->repetition_penalty).s);
    if (!isfinite(p->temperature))
        return vc_errf(VC_EINVAL, "temperature must be a finite number, got %s.", py_float(p->temperature).s);
    if (p->temperature < 0.0f)
        return vc_errf(VC_EINVAL, "temperature must be non-negative, got %s.", py_float(p->temperature).s);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return vc_errf(VC_EINVAL, "top_p must be in (0, 1], got %s.", py_float(p->top_p).s);
    if (p->top_k < -1) return vc_errf(VC_EINVAL, "top_k must be 0 (disable), or at least 1, got %d.", p->top_k);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return vc_errf(VC_EINVAL, "min_p must be in [0, 1], got %s.", py_float(p->min_p).s);
    if (p->max_tokens < 1) return vc_errf(VC_EINVAL, "max_tokens must be at least 1, got %d.", p->max_tokens);
    if (p->min_tokens < 0)
        return vc_errf(VC_EINVAL, "min_tokens must be greater than or equal to 0, got %d.", p->min_tokens);
    if (p->min_tokens > p->max_tokens)
        return vc_errf(VC_EINVAL, "min_tokens must be less than or equal to max_tokens=%d, got %d.", p->max_tokens,
                       p->min_tokens);
    if (p->logprobs < -1) return vc_errf(VC_EINVAL, "logprobs must be non-negative or -1, got %d.", p->logprobs);
    if (p->prompt_logprobs < -1)
        return vc_errf(VC_EINVAL, "prompt_logprobs must be non-negative or -1, got %d.", p->prompt_logprobs);
    for (int i = 0; i < p->n_stop; i++)
        if (!p->stop[i] || !p->stop[i][0]) return vc_errf(VC_EINVAL, "stop cannot contain an empty string.");
    for (int i = 0; i < p->n_bad_words; i++) {
        if (p->bad_words_len[i] < 0 || (p->bad_words_len[i] > 0 && !p->bad_words[i]))
            return vc_errf(VC_EINVAL, "bad_words: entry %d has length %d but no tokens", i, p->bad_words_len[i]);
        if (p->bad_words_len[i] == 0)
            return vc_errf(VC_EINVAL, "bad_words entries must tokenize to at least one token.");
    }
    for (int i = 0; i < p->n_logit_bias; i++)
        if (!isfinite(p->logit_bias[i].bias))
            return vc_errf(VC_EINVAL, "logit_bias for token %d must be a finite number, got %s.",
                           (int)p->logit_bias[i].token, py_float(p->logit_bias[i].bias).s);

    /* __post_init__ -> _verify_greedy_sampling */
    if (p->temperature < GREEDY_EPS && p->n > 1)
        return vc_errf(VC_EINVAL, "n must be 1 when using greedy sampling, got %d.", p->n);

    /* verify(): token ids index the logits row, so they must be < vocab_size */
    if (vocab_size <= 0) return VC_OK;
    char ids[400];
    if (p->n_logit_bias > 0) {
        int32_t *t = malloc(sizeof *t * (size_t)p->n_logit_bias);
        if (!t) return vc_errf(VC_ENOMEM, "out of memory");
        for (int i = 0; i < p->n_logit_bias; i++) t[i] = p->logit_bias[i].token;
        int bad = any_out_of_vocab(t, p->n_logit_bias, vocab_size);
        if (bad) py_bad_id_list(ids, sizeof ids, t, p->n_logit_bias, vocab_size);
        free(t);
        if (bad)
            return vc_errf(VC_EINVAL,
                           "token_id(s) %s in logit_bias contain out-of-vocab token ids. Vocabulary size: %d", ids,
                           vocab_size);
    }
    if (any_out_of_vocab(p->stop_token_ids, p->n_stop_token_ids, vocab_size)) {
        py_bad_id_list(ids, sizeof ids, p->stop_token_ids, p->n_stop_token_ids, vocab_size);
        return vc_errf(VC_EINVAL, "token_id(s) %s in stop_token_ids contain out-of-vocab token ids. Vocabulary size: %d",
                       ids, vocab_size);
    }
    if (p->allowed_token_ids) {
        if (p->n_allowed == 0) return vc_errf(VC_EINVAL, "allowed_token_ids is not None and empty!");
        if (any_out_of_vocab(p->allowed_token_ids, p->n_allowed, vocab_size))
            return vc_errf(VC_EINVAL, "allowed_token_ids contains out-of-vocab token id!");
    }
    for (int i = 0; i < p->n_bad_words; i++) {
        if (!any_out_of_vocab(p->bad_words[i], p->bad_words_len[i], vocab_size)) continue;
        /* vLLM lists every offending id over all bad words */
        size_t len = 0;
        ids[len++] = '[';
        for (int j = i; j < p->n_bad_words && len < sizeof ids - 40; j++)
            for (int k = 0; k < p->bad_words_len[j] && len < sizeof ids - 40; k++) {
                int32_t t = p->bad_words[j][k];
                if (t >= 0 && t < vocab_size) continue;
                len += (size_t)snprintf(ids + len, sizeof ids - len, "%s%d", len > 1 ? ", " : "", (int)t);
            }
        snprintf(ids + len, sizeof ids - len, "]");
        return vc_errf(VC_EINVAL,
                       "The model vocabulary size is %d, but the following tokens were specified as bad: %s. "
                       "All token id values should be integers satisfying: 0 <= token_id <= %d.",
                       vocab_size, ids, vocab_size - 1);
    }
    return VC_OK;
}

int eng_params_check_max_logprobs(const eng_sampling_params *p, int max_logprobs, int vocab_size) {
    if (max_logprobs == -1) max_logprobs = vocab_size;
    if (p->logprobs > 0 && p->logprobs > max_logprobs)
        return vc_errf(VC_EINVAL, "Requested sample logprobs of %d, which is greater than max allowed: %d", p->logprobs,
                       max_logprobs);
    if (p->prompt_logprobs > 0 && p->prompt_logprobs > max_logprobs)
        return vc_errf(VC_EINVAL, "Requested prompt logprobs of %d, which is greater than max allowed: %d",
                       p->prompt_logprobs, max_logprobs);
    return VC_OK;
}

void eng_params_normalize(eng_sampling_params *p) {
    if (p->temperature > 0.0f && p->temperature < MIN_TEMP) p->temperature = MIN_TEMP;
    if (p->has_seed && p->seed == -1) p->has_seed = 0;
    /* stop_token_ids = list(dict.fromkeys(stop_token_ids)): first occurrences, in order */
    int m = 0;
    for (int i = 0; i < p->n_stop_token_ids; i++) {
        int dup = 0;
        for (int j = 0; j < m && !dup; j++) dup = p->stop_token_ids[j] == p->stop_token_ids[i];
        if (!dup) p->stop_token_ids[m++] = p->stop_token_ids[i];
    }
    p->n_stop_token_ids = m;
    if (p->temperature < GREEDY_EPS) {
        p->top_p = 1.0f;
        p->top_k = 0;
        p->min_p = 0.0f;
    }
}

/* ---- copy / free ---- */

/* Copy n elements of `size` bytes; a non-NULL source stays non-NULL even when
 * n == 0 (an empty allowed_token_ids list differs from none). */
static int dup_array(void **dst, const void *src, int n, size_t size) {
    *dst = NULL;
    if (!src) return VC_OK;
    size_t bytes = size * (size_t)(n > 0 ? n : 0);
    *dst = malloc(bytes ? bytes : 1);
    if (!*dst) return VC_ENOMEM;
    if (bytes) memcpy(*dst, src, bytes);
    return VC_OK;
}

int eng_params_copy(eng_sampling_params *dst, const eng_sampling_params *src) {
    *dst = *src;
    dst->stop_token_ids = NULL;
    dst->stop = NULL;
    dst->logit_bias = NULL;
    dst->allowed_token_ids = NULL;
    dst->bad_words = NULL;
    dst->bad_words_len = NULL;
    dst->grammar = NULL; /* retained once the copy succeeded */
    /* counts stay as in src while filling, so a partial copy frees cleanly */
    int n_stop = dst->n_stop, n_bad = dst->n_bad_words;
    dst->n_stop = dst->n_bad_words = 0;
    if (dup_array((void **)&dst->stop_token_ids, src->stop_token_ids, src->n_stop_token_ids, sizeof(int32_t)) ||
        dup_array((void **)&dst->logit_bias, src->logit_bias, src->n_logit_bias, sizeof(eng_logit_bias)) ||
        dup_array((void **)&dst->allowed_token_ids, src->allowed_token_ids, src->n_allowed, sizeof(int32_t)) ||
        dup_array((void **)&dst->bad_words_len, src->bad_words_len, n_bad, sizeof(int)))
        goto oom;
    if (src->stop) {
        dst->stop = calloc((size_t)(n_stop > 0 ? n_stop : 1), sizeof *dst->stop);
        if (!dst->stop) goto oom;
        dst->n_stop = n_stop;
        for (int i = 0; i < n_stop; i++)
            if (src->stop[i] && !(dst->stop[i] = strdup(src->stop[i]))) goto oom;
    }
    if (src->bad_words) {
        dst->bad_words = calloc((size_t)(n_bad > 0 ? n_bad : 1), sizeof *dst->bad_words);
        if (!dst->bad_words) goto oom;
        dst->n_bad_words = n_bad;
        for (int i = 0; i < n_bad; i++) {
            int len = src->bad_words_len ? src->bad_words_len[i] : 0;
            if (dup_array((void **)&dst->bad_words[i], src->bad_words[i], len, sizeof(int32_t))) goto oom;
        }
    }
    dst->n_stop = n_stop;
    dst->n_bad_words = n_bad;
    dst->grammar = gram_retain(src->grammar);
    return VC_OK;
oom:
    eng_params_free(dst);
    return vc_errf(VC_ENOMEM, "out of memory copying sampling parameters");
}

void eng_params_free(eng_sampling_params *p) {
    if (!p) return;
    free(p->stop_token_ids);
    if (p->stop)
        for (int i = 0; i < p->n_stop; i++) free(p->stop[i]);
    free(p->stop);
    free(p->logit_bias);
    free(p->allowed_token_ids);
    if (p->bad_words)
        for (int i = 0; i < p->n_bad_words; i++) free(p->bad_words[i]);
    free(p->bad_words);
    free(p->bad_words_len);
    gram_free(p->grammar);
    memset(p, 0, sizeof *p);
}
