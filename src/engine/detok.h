/* detok: the text side of one completion, as vLLM's output processor does it
 * (IncrementalDetokenizer + StopChecker): sampled tokens become text
 * incrementally (UTF-8 held until complete, the prompt as context for the
 * first pieces), stop strings are looked for in the text that could newly hold
 * one, and a streaming caller gets deltas that hold back the last
 * max(len(stop)) - 1 characters so a stop string is never half sent.
 *
 * A stop string that matches ends the text there (plus the stop string itself
 * with include_stop_str_in_output); the caller then aborts the completion in
 * the engine with ENG_FINISH_STOP, as vLLM V1's output processor does, and
 * ignores anything that still arrives for it. */
#ifndef VLLMC_ENGINE_DETOK_H
#define VLLMC_ENGINE_DETOK_H

#include <stddef.h>
#include <stdint.h>

#include "base/sbuf.h"
#include "engine/params.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    tok_stream *st;
    sbuf s;                   /* the text so far (NUL-terminated) */
    size_t sent;              /* bytes handed out by dt_delta */
    int stopped;              /* a stop string matched: text ends at `cut` */
    int stop_index;           /* which one (index into stop) */
    size_t cut;
    int finished;             /* dt_finish ran */
    int hold_chars;           /* vLLM's stop_buffer_length */
    char *const *stop;        /* borrowed from the sampling params */
    int n_stop;
    int include_stop;
} dt_text;

/* Prime with the prompt (context for the first pieces; its own text is not
 * part of the output). The params must outlive t (their stop strings are
 * borrowed). A NULL tokenizer (a model served without one) gives empty text. */
int dt_init(dt_text *t, const tok_tokenizer *tok, const eng_sampling_params *sp, const int32_t *prompt,
            int n_prompt);
/* Append a sampled token. Returns 1 when a stop string has just matched,
 * 0 otherwise, or a negative VC_E* code. After a stop, further tokens are
 * ignored. */
int dt_push(dt_text *t, int32_t token);
/* The completion ended: release text the stream still held (checked for stop
 * strings too). Returns as dt_push. */
int dt_finish(dt_text *t);
/* The text (cut at dt_len) and its final length: cut at a stop string, else everything. */
const char *dt_str(const dt_text *t);
size_t dt_len(const dt_text *t);
/* Streaming: the text not sent yet that may be sent now (all of it once
 * stopped or finished, else all but the held-back characters); advances
 * `sent`. *p points into the text. */
void dt_delta(dt_text *t, const char **p, size_t *n);
/* The stop string that matched, else NULL. */
const char *dt_stop_str(const dt_text *t);
void dt_free(dt_text *t);

/* vLLM's bad_words (a list of strings) as token sequences, appended to sp, as
 * SamplingParams.update_from_tokenizer does: each word (left-stripped)
 * encoded without special tokens and, when a leading space gives a different
 * first token with the same length, that encoding too. */
struct cJSON;
int dt_add_bad_words(const tok_tokenizer *tok, const struct cJSON *words, eng_sampling_params *sp);

#endif
