/* tokenizer: Hugging Face tokenizer.json (+ tokenizer_config.json) in C.
 *
 * Encodes and decodes exactly like the Rust `tokenizers` library that
 * transformers uses: added tokens, normalizers, pre-tokenizers, the BPE model
 * (byte-level and SentencePiece-style with byte fallback), post-processors
 * and decoders. A component type it does not implement is a load-time error
 * naming the type and the file. See docs in src/tokenizer/tok_internal.h.
 *
 * Ownership and threads: a tok_tokenizer is immutable after loading and may be
 * used by several threads at once (each call takes a private workspace; one is
 * cached inside the tokenizer and taken with an atomic flag). A tok_stream
 * belongs to one request / one thread.
 *
 * Every fallible function returns 0 or a negative VC_E* code and records a
 * message (vc_errmsg()) that names the file or the input position. */
#ifndef VLLMC_TOKENIZER_H
#define VLLMC_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tok_tokenizer tok_tokenizer;

/* A growable list of token ids; zero-initialise, free with tok_ids_free. */
typedef struct {
    int32_t *ids;
    size_t n, cap;
} tok_ids;

/* A growable, NUL-terminated byte string; zero-initialise, free with tok_text_free. */
typedef struct {
    char *s;
    size_t len, cap;
} tok_text;

void tok_ids_free(tok_ids *v);
void tok_text_free(tok_text *t);

/* ---- loading ---- */

/* DIR/tokenizer.json, plus DIR/tokenizer_config.json when it exists. */
int tok_load_dir(const char *dir, tok_tokenizer **out);
/* tokenizer.json bytes (json, len; `what` names it in messages) and optionally
 * tokenizer_config.json bytes (config may be NULL). Nothing is kept pointing
 * into the inputs. */
int tok_load_mem(const char *json, size_t len, const char *what, const char *config, size_t config_len,
                 tok_tokenizer **out);
void tok_free(tok_tokenizer *t);

/* ---- encoding ---- */

/* text (UTF-8, `len` bytes, NULs allowed) -> ids, replacing out->ids' contents.
 * add_special: let the post-processor add its special tokens (BOS etc.), as
 * HF encode(text, add_special_tokens=True). Invalid UTF-8 is VC_EINVAL. */
int tok_encode(const tok_tokenizer *t, const char *text, size_t len, int add_special, tok_ids *out);
/* text -> ids as tiktoken's encode_ordinary: added tokens written in the text are plain text (no added-token
 * matching) and no post-processor runs. For prompts built of pieces (harmony) whose special tokens are
 * placed by id, never read from user text. */
int tok_encode_ordinary(const tok_tokenizer *t, const char *text, size_t len, tok_ids *out);

/* ---- decoding ---- */

enum {
    TOK_DECODE_SKIP_SPECIAL = 1,       /* drop special added tokens (skip_special_tokens) */
    TOK_DECODE_NO_SPACES_SPECIAL = 2,  /* vLLM spaces_between_special_tokens=False: an added token
                                        * right after another added token is emitted as its raw
                                        * content (ignored with SKIP_SPECIAL, as in vLLM) */
    TOK_DECODE_CLEANUP = 4,            /* transformers' clean_up_tokenization (" ." -> "." ...);
                                        * tok_decode only, not streams */
    TOK_DECODE_CONFIG_CLEANUP = 8,     /* CLEANUP if tokenizer_config.json says
                                        * clean_up_tokenization_spaces: true (transformers' decode) */
};

/* ids -> text (valid UTF-8; invalid byte sequences become U+FFFD as HF does).
 * Ids with no token are skipped, as HF does. Replaces out's contents. */
int tok_decode(const tok_tokenizer *t, const int32_t *ids, size_t n, unsigned flags, tok_text *out);

/* Incremental detokenization. Each push returns the text that became final
 * (complete UTF-8, never part of a character; often empty). The concatenation
 * of all pieces plus tok_stream_flush's equals tok_decode(ids, same flags
 * without CLEANUP). O(1) amortised work per token. Text is held back only
 * where a later token can still change it: an incomplete UTF-8 sequence
 * (byte-level), an open run of <0xXX> byte-fallback tokens (HF turns the whole
 * run into U+FFFDs if any byte of it is invalid), a possible partial match of a
 * decoder Replace pattern, or trailing characters a Strip decoder may remove. */
typedef struct tok_stream tok_stream;
int tok_stream_init(const tok_tokenizer *t, unsigned flags, tok_stream **out);
/* Feed context (e.g. the end of the prompt, as vLLM primes its detokenizer)
 * without emitting it: text of these ids is dropped, state is kept. */
int tok_stream_prime(tok_stream *s, const int32_t *ids, size_t n);
/* *piece (NUL-terminated) stays valid until the next call on s. */
int tok_stream_push(tok_stream *s, int32_t id, const char **piece, size_t *piece_len);
/* End of sequence: releases everything still held. The stream is then reset. */
int tok_stream_flush(tok_stream *s, const char **piece, size_t *piece_len);
void tok_stream_reset(tok_stream *s);
void tok_stream_free(tok_stream *s);

/* ---- vocabulary ---- */

/* One more than the largest id (model vocabulary and added tokens). */
size_t tok_vocab_size(const tok_tokenizer *t);
/* The token string of id (added token content or model vocabulary entry, e.g.
 * "Ġhello"), or NULL if the id has none. */
const char *tok_id_to_token(const tok_tokenizer *t, int32_t id, size_t *len);
/* Added tokens first, then the model vocabulary; -1 if absent. */
int32_t tok_token_to_id(const tok_tokenizer *t, const char *token, size_t len);
int tok_is_special(const tok_tokenizer *t, int32_t id); /* special added token */
/* The exact bytes token `id` adds to decoded text when it is not the first token (what a grammar
 * constrains): the decoder steps applied to that one token in mid-text, but kept as raw bytes (a
 * byte-level token may hold part of a UTF-8 character; "<0xE2>" is the byte 0xE2), so the bytes of
 * consecutive tokens concatenate to the decoded text wherever it is valid UTF-8. Special tokens,
 * and ids with no token, have length 0. *bytes is malloc'd (NUL-terminated; free() it). */
int tok_token_bytes(const tok_tokenizer *t, int32_t id, char **bytes, size_t *len);
int tok_is_added(const tok_tokenizer *t, int32_t id);   /* any added token */

/* ---- tokenizer_config.json ---- */

/* Special token strings (a string or {"content": ...} in the config); NULL if absent. */
const char *tok_bos_token(const tok_tokenizer *t);
const char *tok_eos_token(const tok_tokenizer *t);
const char *tok_pad_token(const tok_tokenizer *t);
const char *tok_unk_token(const tok_tokenizer *t);
/* Their ids (-1 if the token is absent or not in the vocabulary). */
int32_t tok_bos_id(const tok_tokenizer *t);
int32_t tok_eos_id(const tok_tokenizer *t);
/* add_bos_token / add_eos_token: 1, 0, or -1 when the config does not say. */
int tok_add_bos_token(const tok_tokenizer *t);
int tok_add_eos_token(const tok_tokenizer *t);
/* model_max_length, or -1 when absent or >= 2^53 (HF's "very large" 1e30). */
long long tok_model_max_length(const tok_tokenizer *t);
/* clean_up_tokenization_spaces (0 when absent, as transformers defaults). */
int tok_clean_up_spaces(const tok_tokenizer *t);
/* chat_template: a string (one template, name "default") or a list of
 * {name, template}. tok_chat_template(t, NULL) is the "default" one (or the
 * only one); NULL when there is none. */
size_t tok_chat_template_count(const tok_tokenizer *t);
const char *tok_chat_template_name(const tok_tokenizer *t, size_t i);
const char *tok_chat_template(const tok_tokenizer *t, const char *name);
/* Any other top-level string field of tokenizer_config.json (e.g.
 * "tokenizer_class", "padding_side"), or NULL. */
const char *tok_config_string(const tok_tokenizer *t, const char *key);

#endif
