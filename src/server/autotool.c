/* autotool: reasoning and tool-call parsing of chat output (see autotool.h). */
#include "server/autotool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/rng.h"

void at_make_id(char *out, size_t cap, const char *prefix) {
    static __thread vc_rng rng;
    static __thread int seeded;
    if (!seeded) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        vc_rng_seed(&rng, (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)(uintptr_t)&rng);
        seeded = 1;
    }
    uint64_t a = vc_rng_next(&rng), b = vc_rng_next(&rng);
    snprintf(out, cap, "%s%016llx%016llx", prefix, (unsigned long long)a, (unsigned long long)b);
}

/* {"id","type","function":{"name","arguments"}} (index >= 0: a stream's first delta of the call). */
static void call_head(sbuf *o, int index, const char *name, size_t name_len) {
    char id[64];
    at_make_id(id, sizeof id, "chatcmpl-tool-");
    sb_str(o, "{");
    if (index >= 0) sb_printf(o, "\"index\":%d,", index);
    sb_printf(o, "\"id\":\"%s\",\"type\":\"function\",\"function\":{\"name\":", id);
    sb_jstr(o, name, name_len);
    sb_str(o, ",\"arguments\":");
}

static void reasoning_fields(sbuf *o, const char *r, size_t n, int present) {
    static const char *const keys[] = {"\"reasoning\":", ",\"reasoning_content\":"};
    for (int k = 0; k < 2; k++) {
        sb_str(o, keys[k]);
        if (present) sb_jstr(o, r, n);
        else sb_str(o, "null");
    }
}

int at_message(sbuf *o, const at_opts *op, const char *echo, const char *text, size_t len) {
    toolp_result rr = {0}, tr = {0};
    const char *content = text, *reason = NULL;
    size_t clen = len, rlen = 0;
    int has_content = 1, called = 0, rc = 0;
    int joint = op->tool && toolp_parser_splits_reasoning(op->tool); /* harmony: one parser reads both */
    if (op->reasoning && !joint) {
        if (toolp_parse(op->reasoning, text, len, &rr)) return -1;
        content = rr.content, clen = rr.content_len, has_content = rr.content != NULL;
        reason = rr.reasoning, rlen = rr.reasoning_len;
    }
    if (op->tool && has_content) { /* vLLM: the tool parser reads the content the reasoning parser left */
        if (toolp_parse_tools(op->tool, content, clen, op->tools, &tr)) {
            rc = -1;
            goto out;
        }
        if (joint) { /* vLLM's harmony path: the parser's content and reasoning, calls or not */
            called = tr.tools_called;
            content = tr.content, clen = tr.content_len, has_content = tr.content != NULL;
            reason = tr.reasoning, rlen = tr.reasoning_len;
        } else if (tr.tools_called) {
            called = 1;
            content = tr.content, clen = tr.content_len, has_content = tr.content != NULL;
        } else if (clen && tr.content && tr.content_len) { /* vLLM: the parser's content first (it may edit it) */
            content = tr.content, clen = tr.content_len;
        }
    }
    sb_str(o, "\"content\":");
    if (echo) {
        sbuf t = {0};
        sb_str(&t, echo);
        if (has_content) sb_raw(&t, content, clen);
        sb_jstr(o, t.b ? t.b : "", t.n);
        o->oom |= t.oom;
        sb_free(&t);
    } else if (has_content) {
        sb_jstr(o, content, clen);
    } else {
        sb_str(o, "null");
    }
    sb_str(o, ",\"refusal\":null,\"annotations\":null,\"audio\":null,\"function_call\":null,\"tool_calls\":[");
    int n = called ? tr.n_calls : 0;
    if (op->first_call_only && n > 1) n = 1;
    for (int k = 0; k < n; k++) {
        if (k) sb_str(o, ",");
        call_head(o, -1, tr.calls[k].name, tr.calls[k].name_len);
        sb_jstr(o, tr.calls[k].args, tr.calls[k].args_len);
        sb_str(o, "}}");
    }
    sb_str(o, "],");
    reasoning_fields(o, reason, rlen, reason && op->include_reasoning);
    rc = o->oom ? -1 : called;
out:
    toolp_result_free(&rr);
    toolp_result_free(&tr);
    return rc;
}

/* ---- streaming ---- */

/* One tool_calls item of a delta: a call's first piece (head: id, type, name) or more arguments. */
typedef struct {
    int index, head;
    sbuf name, args;
} at_piece;

struct at_stream {
    at_opts op;
    toolp_stream *rs, *ts;
    int called;
    /* what one feed collects */
    sbuf content, reasoning;
    at_piece *pieces;
    int n_pieces, cap_pieces;
    int oom;
};

at_stream *at_stream_new(const at_opts *op) {
    at_stream *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->op = *op;
    if (op->tool && toolp_parser_splits_reasoning(op->tool)) s->op.reasoning = NULL; /* the tool parser reads both */
    if ((s->op.reasoning && !(s->rs = toolp_stream_new(op->reasoning))) ||
        (op->tool && !(s->ts = toolp_stream_new_tools(op->tool, op->tools)))) {
        at_stream_free(s);
        return NULL;
    }
    return s;
}

static at_piece *new_piece(at_stream *s, int index, int head) {
    if (s->n_pieces == s->cap_pieces) {
        int nc = s->cap_pieces ? 2 * s->cap_pieces : 4;
        at_piece *np = realloc(s->pieces, sizeof *np * (size_t)nc);
        if (!np) {
            s->oom = 1;
            return NULL;
        }
        s->pieces = np;
        s->cap_pieces = nc;
    }
    at_piece *p = &s->pieces[s->n_pieces++];
    memset(p, 0, sizeof *p);
    p->index = index, p->head = head;
    return p;
}

static void tool_events(at_stream *s, const toolp_event *ev, int n) {
    for (int i = 0; i < n; i++) {
        const toolp_event *e = &ev[i];
        if (e->kind == TOOLP_EV_CONTENT || e->kind == TOOLP_EV_REASONING) { /* reasoning: a joint parser's */
            if (e->kind == TOOLP_EV_CONTENT) sb_raw(&s->content, e->text, e->len);
            else if (s->op.include_reasoning) sb_raw(&s->reasoning, e->text, e->len);
            continue;
        }
        if (s->op.first_call_only && e->index > 0) continue;
        at_piece *p = s->n_pieces ? &s->pieces[s->n_pieces - 1] : NULL;
        if (e->kind == TOOLP_EV_CALL) {
            if ((p = new_piece(s, e->index, 1))) sb_raw(&p->name, e->text, e->len);
            s->called = 1;
        } else if (e->kind == TOOLP_EV_ARGS) {
            if (!p || p->index != e->index) p = new_piece(s, e->index, 0);
            if (p) sb_raw(&p->args, e->text, e->len);
        }
    }
}

/* Content for the tool parser (or, without one, for the delta). */
static void route_content(at_stream *s, const char *p, size_t n, int final) {
    if (!s->ts) {
        sb_raw(&s->content, p, n);
        return;
    }
    toolp_event *ev = NULL;
    int nev = 0;
    if (n && toolp_stream_feed(s->ts, p, n, &ev, &nev)) s->oom = 1;
    else tool_events(s, ev, nev);
    if (final && !s->oom) {
        if (toolp_stream_finish(s->ts, &ev, &nev)) s->oom = 1;
        else tool_events(s, ev, nev);
    }
}

static void reasoning_events(at_stream *s, const toolp_event *ev, int n) {
    for (int i = 0; i < n; i++) {
        if (ev[i].kind == TOOLP_EV_REASONING) {
            if (s->op.include_reasoning) sb_raw(&s->reasoning, ev[i].text, ev[i].len);
        } else if (ev[i].kind == TOOLP_EV_CONTENT) {
            route_content(s, ev[i].text, ev[i].len, 0);
        }
    }
}

static void collect(at_stream *s, const char *d, size_t n, int final) {
    if (!s->rs) {
        route_content(s, d, n, final);
        return;
    }
    toolp_event *ev = NULL;
    int nev = 0;
    if (n && toolp_stream_feed(s->rs, d, n, &ev, &nev)) s->oom = 1;
    else reasoning_events(s, ev, nev);
    if (final && !s->oom) {
        if (toolp_stream_finish(s->rs, &ev, &nev)) s->oom = 1;
        else reasoning_events(s, ev, nev);
        if (!s->oom) route_content(s, "", 0, 1);
    }
}

static void write_pieces(at_stream *s, sbuf *o) {
    sb_str(o, ",\"tool_calls\":[");
    for (int i = 0; i < s->n_pieces; i++) {
        at_piece *p = &s->pieces[i];
        if (i) sb_str(o, ",");
        if (p->head) call_head(o, p->index, p->name.b ? p->name.b : "", p->name.n);
        else sb_printf(o, "{\"index\":%d,\"function\":{\"arguments\":", p->index);
        sb_jstr(o, p->args.b ? p->args.b : "", p->args.n);
        sb_str(o, "}}");
        s->oom |= p->name.oom | p->args.oom;
        sb_free(&p->name);
        sb_free(&p->args);
    }
    sb_str(o, "]");
}

int at_stream_feed(at_stream *s, const char *d, size_t n, int final, sbuf *o) {
    if (s->oom) return -1;
    collect(s, d, n, final);
    int any = 0;
    if (s->reasoning.n) {
        sb_str(o, ",");
        reasoning_fields(o, s->reasoning.b, s->reasoning.n, 1);
        any = 1;
    }
    if (s->content.n) {
        sb_str(o, ",\"content\":");
        sb_jstr(o, s->content.b, s->content.n);
        any = 1;
    }
    if (s->n_pieces) {
        write_pieces(s, o);
        any = 1;
    }
    s->oom |= s->content.oom | s->reasoning.oom | o->oom;
    s->content.n = s->reasoning.n = 0;
    s->n_pieces = 0;
    return s->oom ? -1 : any;
}

int at_stream_called(const at_stream *s) { return s->called; }

void at_stream_free(at_stream *s) {
    if (!s) return;
    toolp_stream_free(s->rs);
    toolp_stream_free(s->ts);
    for (int i = 0; i < s->n_pieces; i++) {
        sb_free(&s->pieces[i].name);
        sb_free(&s->pieces[i].args);
    }
    free(s->pieces);
    sb_free(&s->content);
    sb_free(&s->reasoning);
    free(s);
}
