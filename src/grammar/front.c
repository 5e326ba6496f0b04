/* front: the front ends' shared error messages (see front.h). */
#include "grammar/front.h"

#include <stdarg.h>
#include <stdio.h>

int gram_front_err(const char *who, size_t at, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vc_errf(VC_EINVAL, "%s: %s at %zu", who, msg, at);
}

int gram_front_berr(const char *who, int rc, size_t at) {
    if (rc == VC_ENOMEM) return rc;
    if (at == (size_t)-1) return vc_err_prefix(rc, "%s", who);
    char msg[256];
    snprintf(msg, sizeof msg, "%s", vc_errmsg());
    return vc_errf(rc, "%s: %s at %zu", who, msg, at);
}
