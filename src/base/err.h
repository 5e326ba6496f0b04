/* err: status codes and the per-thread "last error" message.
 *
 * Every function that can fail returns 0 on success or a negative VC_E* code,
 * and on failure records a human-readable message with vc_errf(). The message
 * lives in thread-local storage, so it belongs to the thread that saw the
 * failure; read it with vc_errmsg() before calling anything else that may fail.
 * Only main() turns an error into an exit status. */
#ifndef VLLMC_BASE_ERR_H
#define VLLMC_BASE_ERR_H

enum {
    VC_OK = 0,
    VC_ERR = -1,      /* generic failure */
    VC_ENOMEM = -2,   /* allocation failed */
    VC_EIO = -3,      /* file or system call failed */
    VC_EINVAL = -4,   /* bad argument or value */
    VC_EFORMAT = -5,  /* malformed input file or data */
    VC_EUNSUP = -6,   /* valid but unsupported (architecture, dtype, ...) */
    VC_ENOENT = -7,   /* no such name (a LoRA adapter, ...) */
    VC_EEXIST = -8,   /* the name is taken */
};

#if defined(__GNUC__)
#define VC_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define VC_PRINTF(a, b)
#endif

/* Record a formatted message for this thread and return `code` (so callers can
 * write `return vc_errf(VC_EFORMAT, "...")`). */
int vc_errf(int code, const char *fmt, ...) VC_PRINTF(2, 3);
/* Prefix the current message with "prefix: " (adds context on the way up). */
int vc_err_prefix(int code, const char *fmt, ...) VC_PRINTF(2, 3);
/* The last message recorded on this thread ("" if none). */
const char *vc_errmsg(void);

#endif
