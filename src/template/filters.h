/* filters.h: what the two filter files share: argument binding for filters written like Python
 * signatures, the helpers (str(), int arguments, jinja2's attribute paths "a.b.0", iteration), and
 * the sequence filters of seqfilters.c that filters.c registers. */
#ifndef VLLMC_TEMPLATE_FILTERS_H
#define VLLMC_TEMPLATE_FILTERS_H

#include "template/jinja.h"

/* BIND("name", "param1", ...): p[i] = argument i (positional or keyword) or JT_ABSENT. */
#define BIND(fname, ...)                                                        \
    static const char *const params_[] = {__VA_ARGS__};                         \
    jv p[sizeof params_ / sizeof params_[0]];                                   \
    if (jargs_bind(r, fname, a, params_, sizeof params_ / sizeof params_[0], p)) \
        return JE_FAIL
#define GIVEN(i) (p[i].t != JT_ABSENT)

int jf_ret_list(jlist *l, jv *out);                             /* a list value (NULL: already failed) */
int jf_to_str(jrt *r, jv v, const jstr **out);                  /* str(v); undefined gives "" */
int jf_want_int(jrt *r, jv v, const char *what, int64_t *out);
int jf_attr_get(jrt *r, jv item, const jstr *path, jv *out);    /* jinja2's make_attrgetter */
int jf_iter(jrt *r, jv v, const jv **items, size_t *n);         /* iteration, or the TypeError */

int jf_batch(jrt *r, jv v, jargs *a, jv *out);
int jf_slice(jrt *r, jv v, jargs *a, jv *out);
int jf_dictsort(jrt *r, jv v, jargs *a, jv *out);
int jf_first(jrt *r, jv v, jargs *a, jv *out);
int jf_last(jrt *r, jv v, jargs *a, jv *out);
int jf_items(jrt *r, jv v, jargs *a, jv *out);
int jf_join(jrt *r, jv v, jargs *a, jv *out);
int jf_length(jrt *r, jv v, jargs *a, jv *out);
int jf_list(jrt *r, jv v, jargs *a, jv *out);
int jf_select(jrt *r, jv v, jargs *a, jv *out);
int jf_reject(jrt *r, jv v, jargs *a, jv *out);
int jf_selectattr(jrt *r, jv v, jargs *a, jv *out);
int jf_rejectattr(jrt *r, jv v, jargs *a, jv *out);
int jf_map(jrt *r, jv v, jargs *a, jv *out);
int jf_max(jrt *r, jv v, jargs *a, jv *out);
int jf_min(jrt *r, jv v, jargs *a, jv *out);
int jf_reverse(jrt *r, jv v, jargs *a, jv *out);
int jf_sort(jrt *r, jv v, jargs *a, jv *out);
int jf_sum(jrt *r, jv v, jargs *a, jv *out);
int jf_unique(jrt *r, jv v, jargs *a, jv *out);

#endif
