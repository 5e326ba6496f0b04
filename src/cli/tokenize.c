/* vllmc tokenize / detokenize / bench tokenize (usage in cli_tok.h).
 *
 * tokenize --json reads all of stdin as the text, byte for byte. The --jsonl
 * forms are for tests and scripts that need many strings per process: each
 * input line is one JSON value (a string for tokenize, a list of ids for
 * detokenize) and each output line is the answer for that line. Output JSON
 * strings are valid UTF-8 with ", \ and control characters escaped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/sbuf.h"
#include "cli/cli.h"
#include "cli/cli_tok.h"
#include "tokenizer/json.h"
#include "tokenizer/tokenizer.h"

/* base/sbuf.h with -1 on allocation failure, for the goto-oom style below */
static int sb_put(sbuf *b, const void *p, size_t n) {
    sb_raw(b, p, n);
    return b->oom ? -1 : 0;
}

static int sb_put_str(sbuf *b, const char *z) { return sb_put(b, z, strlen(z)); }

static int sb_json_string(sbuf *b, const char *s, size_t n) {
    sb_jstr(b, s, n);
    return b->oom ? -1 : 0;
}

static int sb_ids(sbuf *b, const int32_t *ids, size_t n) {
    if (sb_put(b, "[", 1)) return -1;
    char num[16];
    for (size_t i = 0; i < n; i++) {
        int k = snprintf(num, sizeof num, i ? ",%d" : "%d", ids[i]);
        if (sb_put(b, num, (size_t)k)) return -1;
    }
    return sb_put(b, "]", 1);
}

static int read_all(FILE *f, sbuf *b) {
    char chunk[65536];
    size_t r;
    if (sb_put(b, "", 0)) return -1;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (sb_put(b, chunk, r)) return -1;
    return ferror(f) ? -1 : 0;
}

/* Reads one line (without the '\n'); 0 at EOF. */
static int read_line(FILE *f, sbuf *b) {
    b->n = 0;
    if (sb_put(b, "", 0)) return -1;
    int c, any = 0;
    while ((c = getc(f)) != EOF) {
        any = 1;
        if (c == '\n') break;
        char ch = (char)c;
        if (sb_put(b, &ch, 1)) return -1;
    }
    return any;
}

static int write_out(const sbuf *b) {
    if (fwrite(b->b, 1, b->n, stdout) != b->n || fflush(stdout) != 0) {
        cli_error("cannot write output");
        return 1;
    }
    return 0;
}

static tok_tokenizer *load(const char *dir) {
    tok_tokenizer *t = NULL;
    if (tok_load_dir(dir, &t)) {
        cli_error("%s", vc_errmsg());
        return NULL;
    }
    return t;
}

static const char tok_usage[] = "usage: vllmc tokenize DIR [--no-special] (--json | --jsonl)\n";
static const char detok_usage[] =
    "usage: vllmc detokenize DIR [--skip-special] [--no-cleanup] [--stream] [--no-spaces-between-special] "
    "(--json | --jsonl)\n";

int cli_tokenize(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0, jsonl = 0, special = 1;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--jsonl") == 0) jsonl = 1;
        else if (strcmp(argv[i], "--no-special") == 0) special = 0;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(tok_usage, stdout);
            return 0;
        } else if (argv[i][0] == '-' || dir) {
            cli_error("tokenize: unexpected argument '%s'", argv[i]);
            fputs(tok_usage, stderr);
            return 2;
        } else dir = argv[i];
    }
    if (!dir || json == jsonl) {
        cli_error(!dir ? "tokenize: missing DIR" : "tokenize: give exactly one of --json and --jsonl");
        fputs(tok_usage, stderr);
        return 2;
    }
    tok_tokenizer *t = load(dir);
    if (!t) return 1;
    sbuf in = {0}, out = {0};
    tok_ids ids = {0};
    int status = 1;
    if (json) {
        if (read_all(stdin, &in)) {
            cli_error("tokenize: cannot read stdin");
            goto done;
        }
        if (tok_encode(t, in.b, in.n, special, &ids)) {
            cli_error("tokenize: %s", vc_errmsg());
            goto done;
        }
        if (sb_put_str(&out, "{\"ids\":") || sb_ids(&out, ids.ids, ids.n) || sb_put_str(&out, "}\n")) goto oom;
        status = write_out(&out);
        goto done;
    }
    for (size_t line = 1;; line++) {
        int r = read_line(stdin, &in);
        if (r < 0) goto oom;
        if (r == 0) break;
        tok_json *doc = NULL;
        if (tok_json_parse(in.b, in.n, "stdin", &doc)) {
            cli_error("tokenize: line %zu: %s", line, vc_errmsg());
            goto done;
        }
        const tok_jv *v = tok_json_root(doc);
        if (v->type != TOK_J_STR) {
            tok_json_free(doc);
            cli_error("tokenize: line %zu: expected a JSON string", line);
            goto done;
        }
        int rc = tok_encode(t, v->u.str, v->len, special, &ids);
        tok_json_free(doc);
        if (rc) {
            cli_error("tokenize: line %zu: %s", line, vc_errmsg());
            goto done;
        }
        out.n = 0;
        if (sb_ids(&out, ids.ids, ids.n) || sb_put(&out, "\n", 1)) goto oom;
        if (write_out(&out)) goto done;
    }
    status = 0;
    goto done;
oom:
    cli_error("out of memory");
    status = 1;
done:
    free(in.b);
    free(out.b);
    tok_ids_free(&ids);
    tok_free(t);
    return status;
}

/* [1,2,3] -> ids */
static int parse_ids(const tok_jv *arr, tok_ids *ids) {
    ids->n = 0;
    if (!arr || arr->type != TOK_J_ARR) return vc_errf(VC_EINVAL, "expected a list of token ids");
    for (uint32_t i = 0; i < arr->len; i++) {
        long long v;
        if (!tok_jint(&arr->u.kids[i], 0, INT32_MAX, &v))
            return vc_errf(VC_EINVAL, "ids[%u] is not a token id (a non-negative integer)", i);
        if (ids->n == ids->cap) {
            size_t nc = ids->cap ? ids->cap * 2 : 256;
            int32_t *ni = realloc(ids->ids, nc * sizeof *ni);
            if (!ni) return vc_errf(VC_ENOMEM, "out of memory");
            ids->ids = ni;
            ids->cap = nc;
        }
        ids->ids[ids->n++] = (int32_t)v;
    }
    return 0;
}

static int detok_one(const tok_tokenizer *t, const tok_ids *ids, unsigned flags, int stream, tok_text *text) {
    if (!stream) return tok_decode(t, ids->ids, ids->n, flags, text);
    tok_stream *s = NULL;
    int rc = tok_stream_init(t, flags, &s);
    text->len = 0;
    sbuf acc = {0};
    if (sb_put(&acc, "", 0)) rc = vc_errf(VC_ENOMEM, "out of memory");
    for (size_t i = 0; i <= ids->n && !rc; i++) {
        const char *p;
        size_t n;
        rc = i < ids->n ? tok_stream_push(s, ids->ids[i], &p, &n) : tok_stream_flush(s, &p, &n);
        if (!rc && sb_put(&acc, p, n)) rc = vc_errf(VC_ENOMEM, "out of memory");
    }
    tok_stream_free(s);
    free(text->s);
    text->s = acc.b;
    text->len = rc ? 0 : acc.n;
    text->cap = acc.cap;
    return rc;
}

int cli_detokenize(int argc, char **argv) {
    const char *dir = NULL;
    int json = 0, jsonl = 0, stream = 0;
    unsigned flags = TOK_DECODE_CONFIG_CLEANUP;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) json = 1;
        else if (strcmp(argv[i], "--jsonl") == 0) jsonl = 1;
        else if (strcmp(argv[i], "--skip-special") == 0) flags |= TOK_DECODE_SKIP_SPECIAL;
        else if (strcmp(argv[i], "--no-cleanup") == 0) flags &= ~(unsigned)TOK_DECODE_CONFIG_CLEANUP;
        else if (strcmp(argv[i], "--no-spaces-between-special") == 0) flags |= TOK_DECODE_NO_SPACES_SPECIAL;
        else if (strcmp(argv[i], "--stream") == 0) stream = 1;
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(detok_usage, stdout);
            return 0;
        } else if (argv[i][0] == '-' || dir) {
            cli_error("detokenize: unexpected argument '%s'", argv[i]);
            fputs(detok_usage, stderr);
            return 2;
        } else dir = argv[i];
    }
    if (!dir || json == jsonl) {
        cli_error(!dir ? "detokenize: missing DIR" : "detokenize: give exactly one of --json and --jsonl");
        fputs(detok_usage, stderr);
        return 2;
    }
    if (stream) flags &= ~(unsigned)TOK_DECODE_CONFIG_CLEANUP;
    tok_tokenizer *t = load(dir);
    if (!t) return 1;
    sbuf in = {0}, out = {0};
    tok_ids ids = {0};
    tok_text text = {0};
    int status = 1;
    for (size_t line = 1;; line++) {
        int r = json ? (line == 1 ? (read_all(stdin, &in) ? -1 : 1) : 0) : read_line(stdin, &in);
        if (r < 0) goto oom;
        if (r == 0) break;
        tok_json *doc = NULL;
        if (tok_json_parse(in.b, in.n, "stdin", &doc)) {
            cli_error("detokenize: %s", vc_errmsg());
            goto done;
        }
        const tok_jv *v = tok_json_root(doc);
        int rc = parse_ids(json ? tok_jget(v, "ids") : v, &ids);
        tok_json_free(doc);
        if (!rc) rc = detok_one(t, &ids, flags, stream, &text);
        if (rc) {
            if (json) cli_error("detokenize: %s", vc_errmsg());
            else cli_error("detokenize: line %zu: %s", line, vc_errmsg());
            goto done;
        }
        out.n = 0;
        if (json) {
            if (sb_put_str(&out, "{\"text\":") || sb_json_string(&out, text.s ? text.s : "", text.len) || sb_put_str(&out, "}\n"))
                goto oom;
        } else if (sb_json_string(&out, text.s ? text.s : "", text.len) || sb_put(&out, "\n", 1)) {
            goto oom;
        }
        if (write_out(&out)) goto done;
    }
    status = 0;
    goto done;
oom:
    cli_error("out of memory");
    status = 1;
done:
    free(in.b);
    free(out.b);
    tok_ids_free(&ids);
    tok_text_free(&text);
    tok_free(t);
    return status;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int cli_bench_tokenize(int argc, char **argv) {
    static const char usage[] = "usage: vllmc bench tokenize DIR FILE [--runs N]\n";
    const char *dir = NULL, *file = NULL;
    long long runs = 3;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc) {
            if (cli_parse_int(argv[++i], "--runs", 1, 1000, &runs)) return 2;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (argv[i][0] == '-' || (dir && file)) {
            cli_error("bench tokenize: unexpected argument '%s'", argv[i]);
            fputs(usage, stderr);
            return 2;
        } else if (!dir) dir = argv[i];
        else file = argv[i];
    }
    if (!dir || !file) {
        fputs(usage, stderr);
        return 2;
    }
    double t0 = now_s();
    tok_tokenizer *t = load(dir);
    if (!t) return 1;
    double load_s = now_s() - t0;
    FILE *f = fopen(file, "rb");
    sbuf in = {0};
    if (!f || read_all(f, &in)) {
        if (f) fclose(f);
        cli_error("%s: cannot read", file);
        tok_free(t);
        free(in.b);
        return 1;
    }
    fclose(f);
    tok_ids ids = {0};
    tok_text text = {0};
    double best = 1e30, best_dec = 1e30;
    int status = 0;
    for (long long r = 0; r < runs; r++) {
        double a = now_s();
        if (tok_encode(t, in.b, in.n, 0, &ids)) {
            cli_error("bench tokenize: %s", vc_errmsg());
            status = 1;
            break;
        }
        double b = now_s();
        if (tok_decode(t, ids.ids, ids.n, 0, &text)) {
            cli_error("bench tokenize: %s", vc_errmsg());
            status = 1;
            break;
        }
        double c = now_s();
        if (b - a < best) best = b - a;
        if (c - b < best_dec) best_dec = c - b;
    }
    if (!status) {
        double mb = (double)in.n / 1e6;
        printf("tokenizer: %s (loaded in %.3f s, %zu ids)\n", dir, load_s, tok_vocab_size(t));
        printf("input: %s, %zu bytes, %zu tokens (%.2f bytes/token)\n", file, in.n, ids.n,
               ids.n ? (double)in.n / (double)ids.n : 0.0);
        printf("encode: %.2f MB/s, %.0f tokens/s (best of %lld runs, 1 thread, %.3f s)\n", mb / best,
               (double)ids.n / best, runs, best);
        printf("decode: %.2f MB/s, %.0f tokens/s (best of %lld runs, 1 thread)\n", (double)text.len / 1e6 / best_dec,
               (double)ids.n / best_dec, runs);
    }
    tok_ids_free(&ids);
    tok_text_free(&text);
    free(in.b);
    tok_free(t);
    return status;
}
