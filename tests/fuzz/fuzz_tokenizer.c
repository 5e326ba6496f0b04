/* fuzz_tokenizer: the tokenizer on hostile input. The first byte picks a mode:
 *   0  the rest is a tokenizer.json (tok_load_mem); if it loads, encode and
 *      decode with it
 *   1  the rest is text for one of three small built-in tokenizers (byte-level,
 *      SentencePiece-style with byte fallback, and one using every other
 *      component); encode, then decode the ids
 *   2  the rest is a list of ids for a built-in tokenizer; decode, and stream
 *      (the pieces must be valid UTF-8 and concatenate to the decode)
 *   3  the rest is a tokenizer_config.json for the byte-level built-in
 * Any crash, sanitizer report or violated invariant (abort) is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *cat(char *a, const char *b) {
    size_t al = a ? strlen(a) : 0, bl = strlen(b);
    char *r = realloc(a, al + bl + 1);
    if (!r) abort();
    memcpy(r + al, b, bl + 1);
    return r;
}

static void json_char(char *out, unsigned cp) {
    if (cp == '"' || cp == '\\') sprintf(out, "\"\\%c\"", cp);
    else if (cp < 0x20) sprintf(out, "\"\\u%04x\"", cp);
    else if (cp < 0x80) sprintf(out, "\"%c\"", cp);
    else if (cp < 0x800) sprintf(out, "\"%c%c\"", 0xC0 | (cp >> 6), 0x80 | (cp & 63));
    else sprintf(out, "\"%c%c%c\"", 0xE0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
}

/* a byte-level tokenizer: the 256-char alphabet, a few merges, added tokens */
static char *json_bytelevel(void) {
    char *j = cat(NULL, "{\"added_tokens\":[{\"id\":300,\"content\":\"<|s|>\",\"special\":true},"
                        "{\"id\":301,\"content\":\"<x>\",\"special\":false,\"lstrip\":true,\"rstrip\":true,\"single_word\":true}],"
                        "\"normalizer\":{\"type\":\"NFC\"},\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
                        "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"(?i:'s|'t)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|"
                        "\\\\p{N}{1,3}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+\"},"
                        "\"behavior\":\"Isolated\",\"invert\":false},{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                        "\"use_regex\":false}]},\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":["
                        "{\"SpecialToken\":{\"id\":\"<|s|>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                        "\"special_tokens\":{\"<|s|>\":{\"id\":\"<|s|>\",\"ids\":[300],\"tokens\":[\"<|s|>\"]}}},"
                        "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"ignore_merges\":true,\"vocab\":{");
    int n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        unsigned cp = printable ? (unsigned)b : 256u + (unsigned)n++;
        char s[16], e[32];
        json_char(s, cp);
        snprintf(e, sizeof e, "%s%s:%d", b ? "," : "", s, b);
        j = cat(j, e);
    }
    return cat(j, ",\"\xC4\xA0t\":256,\"he\":257,\"\xC4\xA0the\":258,\"\xC4\xA0\xC4\xA0\":259},\"merges\":["
                  "\"\xC4\xA0 t\",[\"h\",\"e\"],\"\xC4\xA0t he\",\"\xC4\xA0 \xC4\xA0\"]}}");
}

/* SentencePiece style (llama 2): Prepend/Replace normalizers, byte fallback */
static char *json_sp(void) {
    char *j = cat(NULL, "{\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true},"
                        "{\"id\":1,\"content\":\"<s>\",\"special\":true},{\"id\":2,\"content\":\"</s>\",\"special\":true}],"
                        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"\xE2\x96\x81\"},"
                        "{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"\xE2\x96\x81\"}]},"
                        "\"pre_tokenizer\":null,\"post_processor\":{\"type\":\"TemplateProcessing\",\"single\":["
                        "{\"SpecialToken\":{\"id\":\"<s>\",\"type_id\":0}},{\"Sequence\":{\"id\":\"A\",\"type_id\":0}}],"
                        "\"special_tokens\":{\"<s>\":{\"id\":\"<s>\",\"ids\":[1],\"tokens\":[\"<s>\"]}}},"
                        "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xE2\x96\x81\"},"
                        "\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \","
                        "\"start\":1,\"stop\":0}]},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"fuse_unk\":true,"
                        "\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    char e[64];
    for (int b = 0; b < 256; b++) {
        snprintf(e, sizeof e, ",\"<0x%02X>\":%d", b, 3 + b);
        j = cat(j, e);
    }
    for (int c = 'a'; c <= 'z'; c++) {
        snprintf(e, sizeof e, ",\"%c\":%d", c, 259 + c - 'a');
        j = cat(j, e);
    }
    return cat(j, ",\"\xE2\x96\x81\":285,\"\xE2\x96\x81t\":286,\"he\":287,\"\xE2\x96\x81the\":288,\"\xE2\x96\x81\xE2\x96\x81\":289},"
                  "\"merges\":[\"\xE2\x96\x81 t\",\"h e\",\"\xE2\x96\x81t he\",\"\xE2\x96\x81 \xE2\x96\x81\"]}}");
}

/* every other component */
static char *json_misc(void) {
    char *j = cat(NULL, "{\"added_tokens\":[{\"id\":0,\"content\":\"[UNK]\",\"special\":true},"
                        "{\"id\":1,\"content\":\"AbC\",\"special\":false,\"normalized\":true}],"
                        "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFKC\"},{\"type\":\"NFD\"},"
                        "{\"type\":\"StripAccents\"},{\"type\":\"Lowercase\"},{\"type\":\"Strip\",\"strip_left\":true,"
                        "\"strip_right\":true},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"(a|b)+\"},\"content\":\"x\"},"
                        "{\"type\":\"NFKD\"}]},"
                        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Metaspace\",\"replacement\":"
                        "\"\xE2\x96\x81\",\"prepend_scheme\":\"first\",\"split\":true},{\"type\":\"Digits\",\"individual_digits\":false},"
                        "{\"type\":\"Punctuation\",\"behavior\":\"MergedWithNext\"},{\"type\":\"Split\",\"pattern\":{\"Regex\":\"x*\"},"
                        "\"behavior\":\"Contiguous\",\"invert\":true},{\"type\":\"Split\",\"pattern\":{\"String\":\"q\"},"
                        "\"behavior\":\"MergedWithPrevious\",\"invert\":false},{\"type\":\"WhitespaceSplit\"},{\"type\":\"Whitespace\"},"
                        "{\"type\":\"CharDelimiterSplit\",\"delimiter\":\"z\"},{\"type\":\"ByteLevel\",\"add_prefix_space\":true,"
                        "\"use_regex\":true}]},\"post_processor\":{\"type\":\"RobertaProcessing\",\"sep\":[\"[UNK]\",0],"
                        "\"cls\":[\"AbC\",1]},\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Metaspace\","
                        "\"replacement\":\"\xE2\x96\x81\",\"prepend_scheme\":\"first\"},{\"type\":\"Fuse\"},{\"type\":\"Replace\","
                        "\"pattern\":{\"Regex\":\"c+\"},\"content\":\"C\"},{\"type\":\"Strip\",\"content\":\"d\",\"start\":2,\"stop\":2},"
                        "{\"type\":\"ByteFallback\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\"ee\"},\"content\":\"\"},"
                        "{\"type\":\"ByteLevel\"}]},\"model\":{\"type\":\"BPE\",\"unk_token\":\"[UNK]\",\"fuse_unk\":false,"
                        "\"continuing_subword_prefix\":\"##\",\"end_of_word_suffix\":\"</w>\",\"vocab\":{\"[UNK]\":0,\"AbC\":1");
    char e[64];
    for (int c = 0x21; c < 0x7F; c++) {
        char s[16];
        json_char(s, (unsigned)c);
        snprintf(e, sizeof e, ",%s:%d,\"##%s%s\":%d", s, c * 3, c == '"' || c == '\\' ? "\\" : "", (char[]){(char)c, 0},
                 c * 3 + 1);
        j = cat(j, e);
    }
    return cat(j, ",\"<0x41>\":500,\"ab\":501,\"##b</w>\":502},\"merges\":[\"a ##b\"]}}");
}

static tok_tokenizer *builtin(int k) {
    static tok_tokenizer *cache[3];
    if (!cache[k]) {
        char *j = k == 0 ? json_bytelevel() : k == 1 ? json_sp() : json_misc();
        if (tok_load_mem(j, strlen(j), "builtin.json", NULL, 0, &cache[k])) {
            fprintf(stderr, "builtin %d does not load\n", k);
            abort();
        }
        free(j);
    }
    return cache[k];
}

static int valid_utf8(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t k = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if ((u[i + j] & 0xC0) != 0x80) return 0;
        i += k;
    }
    return 1;
}

static void decode_and_stream(const tok_tokenizer *t, const int32_t *ids, size_t n, unsigned flags) {
    tok_text full = {0};
    if (tok_decode(t, ids, n, flags, &full) == 0 && !valid_utf8(full.s, full.len)) abort();
    tok_stream *s = NULL;
    if (tok_stream_init(t, flags & ~(unsigned)TOK_DECODE_CLEANUP, &s) == 0) {
        char *acc = malloc(1);
        size_t al = 0;
        int ok = 1;
        for (size_t i = 0; i <= n && ok; i++) {
            const char *p;
            size_t pl;
            int rc = i < n ? tok_stream_push(s, ids[i], &p, &pl) : tok_stream_flush(s, &p, &pl);
            if (rc) {
                ok = 0;
                break;
            }
            if (!valid_utf8(p, pl)) abort();
            acc = realloc(acc, al + pl + 1);
            memcpy(acc + al, p, pl);
            al += pl;
        }
        tok_text raw = {0};
        if (ok && tok_decode(t, ids, n, flags & ~(unsigned)TOK_DECODE_CLEANUP, &raw) == 0 &&
            (raw.len != al || memcmp(raw.s, acc, al) != 0))
            abort();
        tok_text_free(&raw);
        free(acc);
        tok_stream_free(s);
    }
    tok_text_free(&full);
}

static void exercise(const tok_tokenizer *t, const char *text, size_t len) {
    static const char *fixed[] = {"", "Hello world", " the  the\n\n<|s|> <x> 123 \xC3\xA9\xF0\x9F\xA6\x99"};
    tok_ids ids = {0};
    for (int i = 0; i < 4; i++) {
        const char *s = i < 3 ? fixed[i] : text;
        size_t n = i < 3 ? strlen(fixed[i]) : len;
        for (int special = 0; special < 2; special++) {
            if (tok_encode(t, s, n, special, &ids) == 0) {
                decode_and_stream(t, ids.ids, ids.n, 0);
                decode_and_stream(t, ids.ids, ids.n, TOK_DECODE_SKIP_SPECIAL | TOK_DECODE_CLEANUP);
            }
        }
    }
    tok_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int mode = data[0] % 4, k = data[1] % 3;
    const char *rest = (const char *)data + 2;
    size_t n = size - 2;
    if (mode == 0) {
        tok_tokenizer *t = NULL;
        if (tok_load_mem((const char *)data + 1, size - 1, "fuzz.json", NULL, 0, &t) == 0) {
            exercise(t, "abc", 3);
            tok_free(t);
        }
    } else if (mode == 1) {
        exercise(builtin(k), rest, n);
    } else if (mode == 2) {
        const tok_tokenizer *t = builtin(k);
        size_t m = n / 2;
        int32_t *ids = malloc((m ? m : 1) * sizeof *ids);
        int32_t vs = (int32_t)tok_vocab_size(t) + 4;
        for (size_t i = 0; i < m; i++) ids[i] = (int32_t)(((unsigned)(uint8_t)rest[2 * i] << 8 | (uint8_t)rest[2 * i + 1]) % (unsigned)vs) - 2;
        decode_and_stream(t, ids, m, 0);
        decode_and_stream(t, ids, m, TOK_DECODE_SKIP_SPECIAL);
        decode_and_stream(t, ids, m, TOK_DECODE_NO_SPACES_SPECIAL);
        free(ids);
    } else {
        char *j = json_bytelevel();
        tok_tokenizer *t = NULL;
        if (tok_load_mem(j, strlen(j), "dir/tokenizer.json", rest, n, &t) == 0) {
            (void)tok_chat_template(t, NULL);
            (void)tok_bos_id(t);
            (void)tok_eos_id(t);
            (void)tok_config_string(t, "tokenizer_class");
            exercise(t, "<|s|>x", 6);
            tok_free(t);
        }
        free(j);
    }
    return 0;
}
