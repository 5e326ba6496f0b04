/* strings.h: Python str methods (strings.c) and string formatting (strfmt.c) for the template
 * interpreter. Method ids index the JSTR_METHODS table; the order of the is* entries matters
 * (strings.c maps them to character classes by offset from JSM_ISALPHA). */
#ifndef VLLMC_TEMPLATE_STRINGS_H
#define VLLMC_TEMPLATE_STRINGS_H

#include "template/jinja.h"

#define JSTR_METHODS(X)                                                                              \
    X(JSM_STRIP, "strip") X(JSM_LSTRIP, "lstrip") X(JSM_RSTRIP, "rstrip") X(JSM_UPPER, "upper")          \
    X(JSM_LOWER, "lower") X(JSM_TITLE, "title") X(JSM_CAPITALIZE, "capitalize")                          \
    X(JSM_SWAPCASE, "swapcase") X(JSM_CASEFOLD, "casefold") X(JSM_SPLIT, "split") X(JSM_RSPLIT, "rsplit") \
    X(JSM_SPLITLINES, "splitlines") X(JSM_STARTSWITH, "startswith") X(JSM_ENDSWITH, "endswith")          \
    X(JSM_FIND, "find") X(JSM_RFIND, "rfind") X(JSM_INDEX, "index") X(JSM_RINDEX, "rindex")              \
    X(JSM_COUNT, "count") X(JSM_REPLACE, "replace") X(JSM_JOIN, "join") X(JSM_CENTER, "center")          \
    X(JSM_LJUST, "ljust") X(JSM_RJUST, "rjust") X(JSM_ZFILL, "zfill") X(JSM_PARTITION, "partition")      \
    X(JSM_RPARTITION, "rpartition") X(JSM_REMOVEPREFIX, "removeprefix")                                  \
    X(JSM_REMOVESUFFIX, "removesuffix") X(JSM_ISALPHA, "isalpha") X(JSM_ISDIGIT, "isdigit")              \
    X(JSM_ISALNUM, "isalnum") X(JSM_ISSPACE, "isspace") X(JSM_ISDECIMAL, "isdecimal")                    \
    X(JSM_ISNUMERIC, "isnumeric") X(JSM_ISLOWER, "islower") X(JSM_ISUPPER, "isupper")                    \
    X(JSM_FORMAT, "format") X(JSM_ENCODE, "encode") X(JSM_EXPANDTABS, "expandtabs")                      \
    X(JSM_ISTITLE, "istitle") X(JSM_ISIDENTIFIER, "isidentifier") X(JSM_ISPRINTABLE, "isprintable")      \
    X(JSM_TRANSLATE, "translate") X(JSM_MAKETRANS, "maketrans") X(JSM_FORMAT_MAP, "format_map")         \
    X(JSM_ISASCII, "isascii")

enum {
#define X(id, name) id,
    JSTR_METHODS(X)
#undef X
};

int js_method_find(const char *name, size_t n);
const char *js_method_name(int id);
int js_method_call(jrt *r, const jstr *s, int id, jargs *a, jv *out, int markup);

int jm_split(jrt *r, const jstr *s, const jstr *sep, int64_t maxsplit, int from_right, jv *out);
int jm_splitlines(jrt *r, const jstr *s, int keepends, jv *out);

/* strfmt.c */
/* fmt % args and fmt.format(*a); markup: fmt is a Markup, so text from arguments is escaped and
 * the result is a Markup */
int jm_percent_format(jrt *r, const jstr *fmt, jv args, jv *out, int markup);
int js_format_method(jrt *r, const jstr *fmt, jargs *a, jv *out, int markup);

#endif
