/* toolp_reasoning: the <think>...</think> reasoning parsers, deepseek_r1 and qwen3.
 *
 * From vLLM's vllm/reasoning/deepseek_r1_reasoning_parser.py, basic_parsers.py
 * (BaseThinkingReasoningParser) and qwen3_reasoning_parser.py. Reasoning streams as it comes,
 * which vLLM does too; the non-streaming results below are the ones that streaming can keep to
 * (nothing taken back), and they differ from vLLM's non-streaming ones only where its own
 * streaming differs from them, as each parser says. */
#include <string.h>

#include "base/err.h"
#include "toolparse/internal.h"

#define THINK "<think>"
#define END_THINK "</think>"
#define NONE ((size_t)-1)

/* ---- deepseek_r1: the reasoning runs from the start to the first </think> ----
 * DeepSeek-R1 (newer templates put <think> in the prompt) writes "reasoning</think>answer", older
 * ones "<think>\nreasoning</think>answer". Reasoning is everything before the first </think>, less
 * a <think> that comes before it; content is what follows </think> (None when empty or when there
 * is no </think>: then it is all reasoning, even an answer that never thought).
 * Difference: vLLM's non-streaming side drops text before <think> ("x<think>r</think>" gives
 * reasoning "r"), and reads a <think> after </think> as a new start; its streaming side sends the
 * text before <think> as reasoning and, like here, the text after </think> as content. */
int toolp_r1_parse(const char *t, size_t n, const cJSON *tools, toolp_result *r) {
    (void)tools;
    size_t j = toolp_find(t, n, 0, END_THINK), i = toolp_find(t, n, 0, THINK), lt = strlen(THINK);
    size_t end = j == NONE ? n : j;
    sbuf b = {0};
    sb_raw(&b, "", 0);
    if (i != NONE && i < end) {
        sb_raw(&b, t, i);
        sb_raw(&b, t + i + lt, end - i - lt);
    } else {
        sb_raw(&b, t, end);
    }
    if (b.oom) return vc_errf(VC_ENOMEM, "out of memory");
    r->reasoning = b.b;
    r->reasoning_len = b.n;
    size_t c = j == NONE ? n : j + strlen(END_THINK);
    return c < n ? toolp_set_content(r, t + c, n - c) : 0;
}

/* mode 0: reasoning (s->mark: a <think> was dropped), 1: content; s->pos: the text read so far. */
void toolp_r1_progress(toolp_stream *s) {
    const char *t = s->text.b;
    size_t n = s->text.n;
    for (;;) {
        if (s->mode == 1) {
            size_t end = toolp_utf8_end(t, s->pos, n);
            toolp_emit_content(s, t + s->pos, end - s->pos);
            s->pos = end;
            return;
        }
        size_t j = toolp_find(t, n, s->pos, END_THINK), i = s->mark ? NONE : toolp_find(t, n, s->pos, THINK);
        if (i != NONE && (j == NONE || i < j)) {
            toolp_emit_reasoning(s, t + s->pos, i - s->pos);
            s->pos = i + strlen(THINK);
            s->mark = 1;
        } else if (j != NONE) {
            toolp_emit_reasoning(s, t + s->pos, j - s->pos);
            s->pos = j + strlen(END_THINK);
            s->mode = 1;
        } else {
            size_t h = toolp_partial(t, n, s->pos, END_THINK), h2 = s->mark ? 0 : toolp_partial(t, n, s->pos, THINK);
            size_t end = toolp_utf8_end(t, s->pos, n - (h > h2 ? h : h2));
            toolp_emit_reasoning(s, t + s->pos, end - s->pos);
            s->pos = end;
            return;
        }
    }
}

/* ---- qwen3: reasoning between <think> and </think> ----
 * Qwen3 with enable_thinking writes "<think>\nreasoning\n</think>\n\nanswer"; without, no tags (or an
 * empty pair from the template). With no <think> the output is all content and reasoning None;
 * otherwise reasoning runs from the first <think> to the next </think> (or the end) and content is
 * the rest around it (None when empty).
 * Differences from vLLM's non-streaming side, which needs both tags: there an unfinished
 * "<think>reasoning" (cut by max_tokens) is all content, tags included, and text before <think>
 * is dropped; its streaming side, like here, streams the reasoning as reasoning. Qwen3 thinking-only
 * models (-Thinking-2507) put <think> in the prompt: use deepseek_r1 for them. */
int toolp_qwen3_parse(const char *t, size_t n, const cJSON *tools, toolp_result *r) {
    (void)tools;
    size_t i = toolp_find(t, n, 0, THINK), lt = strlen(THINK);
    if (i == NONE) return toolp_set_content(r, t, n);
    size_t j = toolp_find(t, n, i + lt, END_THINK), end = j == NONE ? n : j;
    int rc = toolp_set_reasoning(r, t + i + lt, end - i - lt);
    if (rc) return rc;
    sbuf c = {0};
    sb_raw(&c, t, i);
    if (j != NONE) sb_raw(&c, t + j + strlen(END_THINK), n - j - strlen(END_THINK));
    if (c.oom) return vc_errf(VC_ENOMEM, "out of memory");
    if (c.n) {
        r->content = c.b;
        r->content_len = c.n;
    } else {
        sb_free(&c);
    }
    return 0;
}

/* mode 0: content before <think>, 1: reasoning, 2: content after </think>; s->pos as above. */
void toolp_qwen3_progress(toolp_stream *s) {
    const char *t = s->text.b;
    size_t n = s->text.n;
    for (;;) {
        const char *m = s->mode == 0 ? THINK : END_THINK;
        size_t at = s->mode == 2 ? NONE : toolp_find(t, n, s->pos, m);
        void (*emit)(toolp_stream *, const char *, size_t) = s->mode == 1 ? toolp_emit_reasoning : toolp_emit_content;
        if (at == NONE) {
            size_t hold = s->mode == 2 ? 0 : toolp_partial(t, n, s->pos, m);
            size_t end = toolp_utf8_end(t, s->pos, n - hold);
            emit(s, t + s->pos, end - s->pos);
            s->pos = end;
            return;
        }
        emit(s, t + s->pos, at - s->pos);
        s->pos = at + strlen(m);
        s->mode++;
    }
}
