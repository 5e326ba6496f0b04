/* front: what the text front ends (regex.c, gbnf.c) share: their error messages, "<who>: <what> at
 * <byte offset>", and the prefix they put on a builder failure ("grammar too large"); out of memory
 * passes through unprefixed. Internal to src/grammar/. */
#ifndef VLLMC_GRAMMAR_FRONT_H
#define VLLMC_GRAMMAR_FRONT_H

#include <stddef.h>

#include "base/err.h"

/* VC_EINVAL with "who: <message> at <at>". */
int gram_front_err(const char *who, size_t at, const char *fmt, ...) VC_PRINTF(3, 4);
/* A builder call failed with rc: its message gets "who: " (and " at <at>" when at != (size_t)-1). */
int gram_front_berr(const char *who, int rc, size_t at);

#endif
