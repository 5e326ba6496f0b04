/* params: vLLM's SamplingParams defaults, every validation rule with vLLM's
 * exact message, the boundaries that must pass, post-init normalisation, and
 * deep copy / free (run under ASan to check ownership). */
#include <math.h>
#include <string.h>

#include "base/err.h"
#include "engine/params.h"
#include "test.h"

#define VOCAB 1000

/* Validate p; expect failure with exactly `msg` (or success when msg is NULL). */
static void expect(const eng_sampling_params *p, const char *msg, int line) {
    int rc = eng_params_validate(p, VOCAB);
    if (!msg) {
        if (rc != 0) {
            fprintf(stderr, "line %d: expected success, got %d: %s\n", line, rc, vc_errmsg());
            test_failures++;
        }
        return;
    }
    if (rc != VC_EINVAL || strcmp(vc_errmsg(), msg) != 0) {
        fprintf(stderr, "line %d: expected VC_EINVAL \"%s\"\n           got %d \"%s\"\n", line, msg, rc,
                rc ? vc_errmsg() : "");
        test_failures++;
    }
}
#define EXPECT(p, msg) expect(p, msg, __LINE__)

/* One field changed from the defaults. */
#define BAD(field, value, msg)                                                   \
    do {                                                                         \
        eng_sampling_params q_;                                                  \
        eng_params_default(&q_);                                                 \
        q_.field = value;                                                        \
        EXPECT(&q_, msg);                                                        \
    } while (0)
#define GOOD(field, value) BAD(field, value, NULL)

static void test_defaults(void) {
    eng_sampling_params p;
    memset(&p, 0x5a, sizeof p);
    eng_params_default(&p);
    CHECK(p.n == 1 && p.temperature == 1.0f && p.top_p == 1.0f && p.top_k == 0 && p.min_p == 0.0f);
    CHECK(!p.has_seed && p.presence_penalty == 0.0f && p.frequency_penalty == 0.0f && p.repetition_penalty == 1.0f);
    CHECK(p.max_tokens == 16 && p.min_tokens == 0 && !p.ignore_eos && p.logprobs == -1 && p.prompt_logprobs == -1);
    CHECK(p.skip_special_tokens == 1 && p.spaces_between_special_tokens == 1 && !p.include_stop_str_in_output);
    CHECK(!p.stop_token_ids && !p.n_stop_token_ids && !p.stop && !p.n_stop && !p.logit_bias && !p.n_logit_bias);
    CHECK(!p.allowed_token_ids && !p.n_allowed && !p.bad_words && !p.bad_words_len && !p.n_bad_words);
    EXPECT(&p, NULL);
}

static void test_ranges(void) {
    BAD(n, 0, "n must be at least 1, got 0.");
    BAD(presence_penalty, 2.5f, "presence_penalty must be in [-2, 2], got 2.5.");
    BAD(presence_penalty, NAN, "presence_penalty must be in [-2, 2], got nan.");
    BAD(presence_penalty, 1e6f, "presence_penalty must be in [-2, 2], got 1000000.0.");
    BAD(presence_penalty, 1e20f, "presence_penalty must be in [-2, 2], got 1e+20.");
    BAD(frequency_penalty, -3.0f, "frequency_penalty must be in [-2, 2], got -3.0.");
    BAD(repetition_penalty, 0.0f, "repetition_penalty must be greater than zero, got 0.0.");
    BAD(repetition_penalty, -1.25f, "repetition_penalty must be greater than zero, got -1.25.");
    BAD(repetition_penalty, INFINITY, "repetition_penalty must be a finite number, got inf.");
    BAD(temperature, NAN, "temperature must be a finite number, got nan.");
    BAD(temperature, -0.5f, "temperature must be non-negative, got -0.5.");
    BAD(top_p, 1.5f, "top_p must be in (0, 1], got 1.5.");
    BAD(top_p, 0.0f, "top_p must be in (0, 1], got 0.0.");
    BAD(top_p, -1e-7f, "top_p must be in (0, 1], got -1e-07.");
    BAD(top_k, -2, "top_k must be 0 (disable), or at least 1, got -2.");
    BAD(min_p, 1.1f, "min_p must be in [0, 1], got 1.1.");
    BAD(min_p, -0.01f, "min_p must be in [0, 1], got -0.01.");
    BAD(max_tokens, 0, "max_tokens must be at least 1, got 0.");
    BAD(min_tokens, -1, "min_tokens must be greater than or equal to 0, got -1.");
    BAD(min_tokens, 17, "min_tokens must be less than or equal to max_tokens=16, got 17.");
    BAD(logprobs, -2, "logprobs must be non-negative or -1, got -2.");
    BAD(prompt_logprobs, -5, "prompt_logprobs must be non-negative or -1, got -5.");

    GOOD(presence_penalty, -2.0f);
    GOOD(frequency_penalty, 2.0f);
    GOOD(repetition_penalty, 1e-3f);
    GOOD(repetition_penalty, 100.0f);
    GOOD(temperature, 0.0f);
    GOOD(temperature, 2.0f);
    GOOD(temperature, 0.005f);
    GOOD(top_p, 1e-6f);
    GOOD(top_k, -1);
    GOOD(top_k, 1);
    GOOD(min_p, 1.0f);
    GOOD(max_tokens, 1);
    GOOD(min_tokens, 16);
    GOOD(logprobs, 0);
    GOOD(prompt_logprobs, 0);
    GOOD(seed, -5);

    /* greedy with n > 1: rejected after the range checks */
    eng_sampling_params p;
    eng_params_default(&p);
    p.temperature = 0.0f;
    p.n = 3;
    EXPECT(&p, "n must be 1 when using greedy sampling, got 3.");
    p.top_p = 2.0f; /* a range error is reported first, as in vLLM */
    EXPECT(&p, "top_p must be in (0, 1], got 2.0.");
    p.top_p = 1.0f;
    p.temperature = 1e-5f;
    EXPECT(&p, NULL);
}

static void test_lists(void) {
    eng_sampling_params p;
    eng_params_default(&p);
    char *stops[] = {"a", ""};
    p.stop = stops;
    p.n_stop = 1;
    EXPECT(&p, NULL);
    p.n_stop = 2;
    EXPECT(&p, "stop cannot contain an empty string.");
    p.stop = NULL;
    EXPECT(&p, "stop: 2 entries but no array");
    p.n_stop = 0;

    int32_t stop_ids[] = {3, 1000, 7, -1};
    p.stop_token_ids = stop_ids;
    p.n_stop_token_ids = 3;
    EXPECT(&p, "token_id(s) [1000] in stop_token_ids contain out-of-vocab token ids. Vocabulary size: 1000");
    p.n_stop_token_ids = 4;
    EXPECT(&p, "token_id(s) [1000, -1] in stop_token_ids contain out-of-vocab token ids. Vocabulary size: 1000");
    CHECK(eng_params_validate(&p, 0) == 0); /* no vocabulary: ids not range-checked */
    p.n_stop_token_ids = 1;
    EXPECT(&p, NULL);
    p.n_stop_token_ids = 0;

    eng_logit_bias lb[] = {{5, 1.5f}, {999, -100.0f}, {1000, 2.0f}, {-3, 0.0f}};
    p.logit_bias = lb;
    p.n_logit_bias = 2;
    EXPECT(&p, NULL);
    p.n_logit_bias = 4;
    EXPECT(&p, "token_id(s) [1000, -3] in logit_bias contain out-of-vocab token ids. Vocabulary size: 1000");
    lb[1].bias = INFINITY;
    EXPECT(&p, "logit_bias for token 999 must be a finite number, got inf.");
    lb[1].bias = 0.0f;
    p.n_logit_bias = 0;

    int32_t allowed[] = {4, 4, 1000};
    p.allowed_token_ids = allowed;
    p.n_allowed = 0;
    EXPECT(&p, "allowed_token_ids is not None and empty!");
    p.n_allowed = 2;
    EXPECT(&p, NULL);
    p.n_allowed = 3;
    EXPECT(&p, "allowed_token_ids contains out-of-vocab token id!");
    p.allowed_token_ids = NULL;
    p.n_allowed = 0;

    int32_t w0[] = {1, 2, 3}, w1[] = {1000}, w2[] = {7, -2};
    int32_t *words[] = {w0, w1, w2};
    int lens[] = {3, 1, 2};
    p.bad_words = words;
    p.bad_words_len = lens;
    p.n_bad_words = 1;
    EXPECT(&p, NULL);
    p.n_bad_words = 3;
    EXPECT(&p, "The model vocabulary size is 1000, but the following tokens were specified as bad: [1000, -2]. "
               "All token id values should be integers satisfying: 0 <= token_id <= 999.");
    lens[0] = 0;
    EXPECT(&p, "bad_words entries must tokenize to at least one token.");
    lens[0] = 3;
    p.bad_words_len = NULL;
    EXPECT(&p, "bad_words: 3 entries but no array");
}

static void test_max_logprobs(void) {
    eng_sampling_params p;
    eng_params_default(&p);
    p.logprobs = 20;
    CHECK(eng_params_check_max_logprobs(&p, 20, VOCAB) == 0);
    p.logprobs = 21;
    CHECK(eng_params_check_max_logprobs(&p, 20, VOCAB) == VC_EINVAL);
    CHECK(strcmp(vc_errmsg(), "Requested sample logprobs of 21, which is greater than max allowed: 20") == 0);
    CHECK(eng_params_check_max_logprobs(&p, -1, VOCAB) == 0);
    p.logprobs = -1;
    p.prompt_logprobs = 30;
    CHECK(eng_params_check_max_logprobs(&p, 20, VOCAB) == VC_EINVAL);
    CHECK(strcmp(vc_errmsg(), "Requested prompt logprobs of 30, which is greater than max allowed: 20") == 0);
}

static void test_normalize(void) {
    eng_sampling_params p;
    eng_params_default(&p);
    int32_t ids[] = {5, 3, 5, 7, 3, 5};
    p.stop_token_ids = ids;
    p.n_stop_token_ids = 6;
    p.temperature = 0.005f;
    p.has_seed = 1;
    p.seed = -1;
    p.top_p = 0.5f;
    eng_params_normalize(&p);
    CHECK(p.temperature == 1e-2f && !p.has_seed && p.top_p == 0.5f);
    CHECK(p.n_stop_token_ids == 3 && ids[0] == 5 && ids[1] == 3 && ids[2] == 7);

    eng_params_default(&p);
    p.temperature = 0.0f;
    p.top_p = 0.3f;
    p.top_k = 5;
    p.min_p = 0.2f;
    p.has_seed = 1;
    p.seed = 123;
    eng_params_normalize(&p);
    CHECK(p.temperature == 0.0f && p.top_p == 1.0f && p.top_k == 0 && p.min_p == 0.0f && p.has_seed && p.seed == 123);
}

static void test_copy(void) {
    eng_sampling_params z;
    memset(&z, 0, sizeof z);
    eng_params_free(&z); /* zeroed: safe */
    eng_sampling_params c;
    CHECK(eng_params_copy(&c, &z) == 0);
    CHECK(!c.stop && !c.bad_words && !c.allowed_token_ids);
    eng_params_free(&c);
    eng_params_free(&c); /* twice: zeroed by the first */

    /* a fully populated, heap-owned source */
    eng_sampling_params s;
    eng_params_default(&s);
    s.n_stop_token_ids = 2;
    s.stop_token_ids = malloc(2 * sizeof(int32_t));
    s.stop_token_ids[0] = 11, s.stop_token_ids[1] = 12;
    s.n_stop = 2;
    s.stop = malloc(2 * sizeof(char *));
    s.stop[0] = strdup("</s>"), s.stop[1] = strdup("\n\n");
    s.n_logit_bias = 1;
    s.logit_bias = malloc(sizeof(eng_logit_bias));
    s.logit_bias[0] = (eng_logit_bias){42, -3.5f};
    s.n_allowed = 0;
    s.allowed_token_ids = malloc(1); /* empty list, not "none" */
    s.n_bad_words = 2;
    s.bad_words = malloc(2 * sizeof(int32_t *));
    s.bad_words_len = malloc(2 * sizeof(int));
    s.bad_words_len[0] = 1, s.bad_words_len[1] = 3;
    s.bad_words[0] = malloc(sizeof(int32_t));
    s.bad_words[0][0] = 9;
    s.bad_words[1] = malloc(3 * sizeof(int32_t));
    s.bad_words[1][0] = 1, s.bad_words[1][1] = 2, s.bad_words[1][2] = 3;
    s.has_seed = 1, s.seed = INT64_MIN, s.top_k = 7, s.logprobs = 5;

    CHECK(eng_params_copy(&c, &s) == 0);
    CHECK(c.stop_token_ids != s.stop_token_ids && c.stop != s.stop && c.stop[0] != s.stop[0]);
    CHECK(c.bad_words != s.bad_words && c.bad_words[1] != s.bad_words[1] && c.logit_bias != s.logit_bias);
    eng_params_free(&s);
    CHECK(s.stop == NULL && s.n_stop == 0);
    CHECK(c.n_stop_token_ids == 2 && c.stop_token_ids[0] == 11 && c.stop_token_ids[1] == 12);
    CHECK(c.n_stop == 2 && strcmp(c.stop[0], "</s>") == 0 && strcmp(c.stop[1], "\n\n") == 0);
    CHECK(c.n_logit_bias == 1 && c.logit_bias[0].token == 42 && c.logit_bias[0].bias == -3.5f);
    CHECK(c.allowed_token_ids != NULL && c.n_allowed == 0);
    CHECK(c.n_bad_words == 2 && c.bad_words_len[0] == 1 && c.bad_words_len[1] == 3);
    CHECK(c.bad_words[0][0] == 9 && c.bad_words[1][0] == 1 && c.bad_words[1][2] == 3);
    CHECK(c.has_seed && c.seed == INT64_MIN && c.top_k == 7 && c.logprobs == 5);
    CHECK(eng_params_validate(&c, VOCAB) == VC_EINVAL); /* the empty allowed list survived the copy */

    /* a copy of a copy, then both freed */
    eng_sampling_params d;
    CHECK(eng_params_copy(&d, &c) == 0);
    eng_params_free(&c);
    CHECK(strcmp(d.stop[1], "\n\n") == 0 && d.bad_words[1][1] == 2);
    eng_params_free(&d);
    eng_sampling_params zero;
    memset(&zero, 0, sizeof zero);
    CHECK(memcmp(&d, &zero, sizeof d) == 0);
}

int main(void) {
    test_defaults();
    test_ranges();
    test_lists();
    test_max_logprobs();
    test_normalize();
    test_copy();
    TEST_END();
}
