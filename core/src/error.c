/* core/src/error.c: error names and messages, generated from GY_ERR_MAP. */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

const char *gy_strerror(int code) {
    switch (code) {
    case GY_OK:
        return "success";
#define GY__ERR_MSG(name, msg) \
    case GY_E##name:           \
        return msg;
        GY_ERR_MAP(GY__ERR_MSG)
#undef GY__ERR_MSG
    default:
        return "unknown error";
    }
}

const char *gy_err_name(int code) {
    switch (code) {
    case GY_OK:
        return "OK";
#define GY__ERR_NAME(name, msg) \
    case GY_E##name:            \
        return "E" #name;
        GY_ERR_MAP(GY__ERR_NAME)
#undef GY__ERR_NAME
    default:
        return "EUNKNOWN";
    }
}

int gy__errmsg_set(gy_errmsg *err, int code, const char *fmt, ...) {
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        /* vsnprintf truncates and always terminates a non-empty buffer. */
        (void)vsnprintf(err->text, sizeof err->text, fmt, ap);
        va_end(ap);
    }
    return code;
}
