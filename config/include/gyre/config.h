/* gyre/config.h: gyred's settings, each declared once in a table
 * (config/src/settings.def: name, type, default, bounds, description,
 * whether it may change at run time), and a configuration holding a value
 * for each.
 *
 * Values come from, in order: the defaults, a config file (INI, parsed by
 * inih: `name = value` lines, `#` or `;` comments, no sections), then the
 * command line. A bad value is refused with the setting's name, the value,
 * where it came from (file:line or the flag) and what is allowed; loading a
 * file or a list of changes is all or nothing.
 *
 * Thread-safety: a gy_config is a plain value; share it read-only or guard
 * it. The table is immutable.
 */
#ifndef GYRE_CONFIG_H
#define GYRE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gyre/common.h"
#include "gyre/error.h"

typedef enum gy_setting_type {
    GY_SETTING_BOOL,     /* on/off, yes/no, true/false, 1/0 */
    GY_SETTING_INT,      /* a decimal integer */
    GY_SETTING_BYTES,    /* an integer with an optional k, m or g (powers of 1024) */
    GY_SETTING_DURATION, /* an integer with ms, s, m or h (none: seconds); kept in ms */
    GY_SETTING_STRING,   /* bounds: length */
    GY_SETTING_ADDRESS,  /* HOST:PORT (IPv4, [IPv6] or localhost; port 0..65535) */
    GY_SETTING_ENUM,     /* one of a fixed list of words */
} gy_setting_type;

typedef struct gy_setting {
    const char *name;
    gy_setting_type type;
    const char *default_value; /* as written in a config file */
    int64_t min, max;          /* INT, BYTES, DURATION (ms), STRING (length) */
    bool runtime;              /* may change while the server runs (SIGHUP, admin) */
    const char *description;
    const char *const *choices; /* ENUM: NULL-terminated; else NULL */
} gy_setting;

/* gy_settings: the table (*count entries), in declaration order. */
GY_API const gy_setting *gy_settings(size_t *count);
/* gy_setting_find: the setting called `name`, or NULL. */
GY_API const gy_setting *gy_setting_find(const char *name);
/* gy_setting_type_name: "bool", "int", "bytes", ... */
GY_API const char *gy_setting_type_name(gy_setting_type type);

typedef struct gy_config gy_config;

/* gy_config_new: a configuration holding every default. Returns 0 or
 * GY_ENOMEM. gy_config_free: release it (NULL allowed). */
GY_API int gy_config_new(gy_config **out);
GY_API void gy_config_free(gy_config *cfg);
/* gy_config_copy: an independent copy. Returns 0 or GY_ENOMEM. */
GY_API int gy_config_copy(const gy_config *cfg, gy_config **out);

/* gy_config_set: parse `value` for setting `name` and store it; `source`
 * names where it came from for the message ("gyre.conf:12", "--set").
 * Returns 0; GY_ENOENT (no such setting; the message suggests the nearest
 * name); GY_EINVAL (bad value: the message names setting, value, source
 * and what is allowed); GY_ERANGE (out of bounds); GY_ENOMEM. Unchanged on
 * error. */
GY_API int gy_config_set(gy_config *cfg, const char *name, const char *value, const char *source,
                         gy_errmsg *err);

/* gy_config_set_many: n changes at once, all or nothing (`runtime_only`:
 * refuse settings that cannot change while running, GY_EPERM). */
GY_API int gy_config_set_many(gy_config *cfg, size_t n, const char *const *names,
                              const char *const *values, const char *source, bool runtime_only,
                              gy_errmsg *err);

/* gy_config_load_file / gy_config_load_string: apply a config file (or its
 * text; `name` is used in messages), all or nothing. A setting named twice
 * takes the later value. Errors as gy_config_set, plus GY_EIO (cannot
 * read the file) and GY_EINVAL for a syntax error or a [section]. */
GY_API int gy_config_load_file(gy_config *cfg, const char *path, gy_errmsg *err);
GY_API int gy_config_load_string(gy_config *cfg, const char *text, const char *name,
                                 gy_errmsg *err);

/* What the command line asked for besides settings. */
typedef enum gy_config_action {
    GY_CONFIG_RUN = 0,
    GY_CONFIG_HELP,    /* --help: print gy_config_usage */
    GY_CONFIG_VERSION, /* --version */
} gy_config_action;

/* gy_config_apply_args: apply gyred's command line: --config FILE (loaded
 * first, replacing `default_text`, the embedded default file, when given;
 * may be NULL), then in order --listen HOST:PORT, --admin-socket PATH,
 * --threads N, --set NAME=VALUE (any setting; repeatable), --help,
 * --version. *config_path receives the file used (NULL: the embedded one).
 * All or nothing. Returns 0 or an error as above; GY_EINVAL for an unknown
 * flag or a missing argument (the message says which). */
GY_API int gy_config_apply_args(gy_config *cfg, int argc, char **argv, const char *default_text,
                                gy_config_action *action, const char **config_path, gy_errmsg *err);

/* gy_config_default_text: the text of config/gyre.conf as built in (the
 * file gyred runs on without --config). Static storage. */
GY_API const char *gy_config_default_text(void);

/* gy_config_usage: the --help text (flags, then every setting with its
 * type, default, bounds and description) into buf; returns the length it
 * needs (like snprintf). */
GY_API size_t gy_config_usage(char *buf, size_t size, const char *program);

/* Values. gy_config_int: BOOL (0/1), INT, BYTES, DURATION (ms);
 * gy_config_str: STRING, ADDRESS, ENUM. Asking for a missing setting or
 * the wrong type is a programming error: 0 or "" is returned. */
GY_API int64_t gy_config_int(const gy_config *cfg, const char *name);
GY_API const char *gy_config_str(const gy_config *cfg, const char *name);

/* gy_config_format: the value of `name` as a config file would write it
 * ("16k", "10s", "on") into buf; returns the length needed, or 0 for an
 * unknown name. */
GY_API size_t gy_config_format(const gy_config *cfg, const char *name, char *buf, size_t size);

#endif /* GYRE_CONFIG_H */
