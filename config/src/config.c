/* config/src/config.c: the settings table (from settings.def), value
 * parsing and checking, config files (read here: see load_line), and
 * gyred's flags. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gyre/config.h"

/* --- the table -------------------------------------------------------------- */

/* The choices of each ENUM setting, named choices_<setting>. */
static const char *const choices_log_level[] = {"debug", "info", "warn", "error", NULL};
static const char *const choices_admin_group_level[] = {"user", "operator", "admin", NULL};
static const char *const choices_gc_mode[] = {"concurrent", "stw", NULL};

#define CHOICES_BOOL(name) NULL
#define CHOICES_INT(name) NULL
#define CHOICES_BYTES(name) NULL
#define CHOICES_DURATION(name) NULL
#define CHOICES_STRING(name) NULL
#define CHOICES_ADDRESS(name) NULL
#define CHOICES_ENUM(name) choices_##name
#define X(name, type, def, lo, hi, rt, desc) \
    {#name, GY_SETTING_##type, def, lo, hi, rt, desc, CHOICES_##type(name)},
static const gy_setting table[] = {
#include "settings.def"
};
#undef X
#define NSETTINGS (sizeof table / sizeof table[0])

const gy_setting *gy_settings(size_t *count) {
    *count = NSETTINGS;
    return table;
}

static long setting_index(const char *name) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (strcmp(table[i].name, name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

const gy_setting *gy_setting_find(const char *name) {
    long i = setting_index(name);
    return i < 0 ? NULL : &table[i];
}

const char *gy_setting_type_name(gy_setting_type type) {
    static const char *const names[] = {"bool",   "int",     "bytes", "duration",
                                        "string", "address", "enum"};
    return (unsigned)type < sizeof names / sizeof names[0] ? names[type] : "?";
}

/* --- values ----------------------------------------------------------------------- */

typedef struct setting_value {
    int64_t i;
    char *s; /* STRING, ADDRESS, ENUM: owned */
} setting_value;

struct gy_config {
    setting_value v[NSETTINGS];
};

/* Copy len bytes of `in` into out (cap bytes, NUL-terminated), control
 * bytes (and, when `high`, bytes past ASCII) written \xNN; stops before
 * what would not fit whole. */
static void escape_into(char *out, size_t cap, const char *in, size_t len, bool high) {
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (c < 0x20 || c == 0x7F || (high && c > 0x7F)) {
            if (o + 4 >= cap) {
                break;
            }
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            if (o + 1 >= cap) {
                break;
            }
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

/* An error message. Messages echo names and values from files and flags:
 * control bytes in them are written \xNN, so none reaches a terminal or a
 * log line raw (found by fuzz_config: a tab in an unknown name). */
static int fail(gy_errmsg *err, int code, const char *fmt, ...) GY_PRINTF(3, 4);
static int fail(gy_errmsg *err, int code, const char *fmt, ...) {
    if (err != NULL) {
        char raw[sizeof err->text];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        escape_into(err->text, sizeof err->text, raw, strlen(raw), false);
        err->code = code;
    }
    return code;
}

static bool is_text(gy_setting_type t) {
    return t == GY_SETTING_STRING || t == GY_SETTING_ADDRESS || t == GY_SETTING_ENUM;
}

/* What a setting allows, for messages: "1..1000000", "on or off", ... */
static void allowed(const gy_setting *s, char *buf, size_t size) {
    switch (s->type) {
    case GY_SETTING_BOOL:
        snprintf(buf, size, "on or off (yes/no, true/false, 1/0)");
        break;
    case GY_SETTING_INT:
        snprintf(buf, size, "an integer %lld..%lld", (long long)s->min, (long long)s->max);
        break;
    case GY_SETTING_BYTES:
        snprintf(buf, size, "bytes %lld..%lld, with an optional k, m or g", (long long)s->min,
                 (long long)s->max);
        break;
    case GY_SETTING_DURATION:
        snprintf(buf, size, "a duration %lldms..%lldms, with ms, s, m or h (none: seconds)",
                 (long long)s->min, (long long)s->max);
        break;
    case GY_SETTING_STRING:
        snprintf(buf, size, "text of %lld..%lld bytes", (long long)s->min, (long long)s->max);
        break;
    case GY_SETTING_ADDRESS:
        snprintf(buf, size, "HOST:PORT (IPv4, [IPv6] or localhost; port 0..65535)");
        break;
    case GY_SETTING_ENUM: {
        size_t len = 0;
        buf[0] = '\0';
        for (const char *const *c = s->choices; c != NULL && *c != NULL; c++) {
            int n = snprintf(buf + len, size - len, "%s%s", len ? ", " : "one of ", *c);
            len += n > 0 && (size_t)n < size - len ? (size_t)n : 0;
        }
        break;
    }
    }
}

/* An integer with an optional unit suffix; false when malformed. */
static bool parse_scaled(const char *text, const char *const *units, const int64_t *scale,
                         int64_t none, int64_t *out) {
    errno = 0;
    char *end;
    if (!isdigit((unsigned char)text[0]) && text[0] != '-') {
        return false;
    }
    long long n = strtoll(text, &end, 10);
    if (errno != 0 || end == text) {
        return false;
    }
    int64_t mul = none;
    if (*end != '\0') {
        mul = 0;
        for (size_t u = 0; units[u] != NULL; u++) {
            if (strcmp(end, units[u]) == 0) {
                mul = scale[u];
            }
        }
        if (mul == 0) {
            return false;
        }
    }
    if (n != 0 && (n > INT64_MAX / mul || n < INT64_MIN / mul)) {
        return false;
    }
    *out = (int64_t)n * mul;
    return true;
}

static bool parse_address(const char *text) {
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0') {
        return false;
    }
    char host[256];
    size_t hl = (size_t)(colon - text);
    if (hl >= sizeof host) {
        return false;
    }
    memcpy(host, text, hl);
    host[hl] = '\0';
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || errno != 0 || port < 0 || port > 65535 ||
        !isdigit((unsigned char)colon[1])) {
        return false;
    }
    unsigned char buf[16];
    if (host[0] == '[') {
        if (hl < 3 || host[hl - 1] != ']') {
            return false;
        }
        host[hl - 1] = '\0';
        return inet_pton(AF_INET6, host + 1, buf) == 1;
    }
    return strcmp(host, "localhost") == 0 || inet_pton(AF_INET, host, buf) == 1;
}

/* Parse `text` for setting s into *out (out->s newly allocated). */
static int parse_value(const gy_setting *s, const char *text, const char *source,
                       setting_value *out, gy_errmsg *err) {
    char what[160];
    allowed(s, what, sizeof what);
    int64_t n = 0;
    out->i = 0;
    out->s = NULL;
    switch (s->type) {
    case GY_SETTING_BOOL: {
        static const char *const yes[] = {"on", "yes", "true", "1"};
        static const char *const no[] = {"off", "no", "false", "0"};
        for (size_t k = 0; k < 4; k++) {
            if (strcmp(text, yes[k]) == 0) {
                out->i = 1;
                return GY_OK;
            }
            if (strcmp(text, no[k]) == 0) {
                return GY_OK;
            }
        }
        return fail(err, GY_EINVAL, "%s: %s = '%s': not a boolean (allowed: %s)", source, s->name,
                    text, what);
    }
    case GY_SETTING_INT: {
        static const char *const none[] = {NULL};
        if (!parse_scaled(text, none, NULL, 1, &n)) {
            return fail(err, GY_EINVAL, "%s: %s = '%s': not an integer (allowed: %s)", source,
                        s->name, text, what);
        }
        break;
    }
    case GY_SETTING_BYTES: {
        static const char *const units[] = {"k", "K", "m", "M", "g", "G", NULL};
        static const int64_t scale[] = {1024, 1024, 1048576, 1048576, 1073741824LL, 1073741824LL};
        if (!parse_scaled(text, units, scale, 1, &n)) {
            return fail(err, GY_EINVAL, "%s: %s = '%s': not a size (allowed: %s)", source, s->name,
                        text, what);
        }
        break;
    }
    case GY_SETTING_DURATION: {
        static const char *const units[] = {"ms", "s", "m", "h", NULL};
        static const int64_t scale[] = {1, 1000, 60000, 3600000};
        if (!parse_scaled(text, units, scale, 1000, &n)) {
            return fail(err, GY_EINVAL, "%s: %s = '%s': not a duration (allowed: %s)", source,
                        s->name, text, what);
        }
        break;
    }
    case GY_SETTING_STRING: {
        size_t len = strlen(text);
        if ((int64_t)len < s->min || (int64_t)len > s->max) {
            return fail(err, GY_ERANGE, "%s: %s = '%s': %zu bytes (allowed: %s)", source, s->name,
                        text, len, what);
        }
        break;
    }
    case GY_SETTING_ADDRESS:
        if (!parse_address(text)) {
            return fail(err, GY_EINVAL, "%s: %s = '%s': not an address (allowed: %s)", source,
                        s->name, text, what);
        }
        break;
    case GY_SETTING_ENUM: {
        bool ok = false;
        for (const char *const *c = s->choices; c != NULL && *c != NULL; c++) {
            ok |= strcmp(text, *c) == 0;
        }
        if (!ok) {
            return fail(err, GY_EINVAL, "%s: %s = '%s': not a choice (allowed: %s)", source,
                        s->name, text, what);
        }
        break;
    }
    }
    if (s->type == GY_SETTING_INT || s->type == GY_SETTING_BYTES ||
        s->type == GY_SETTING_DURATION) {
        if (n < s->min || n > s->max) {
            return fail(err, GY_ERANGE, "%s: %s = '%s': out of range (allowed: %s)", source,
                        s->name, text, what);
        }
        out->i = n;
        return GY_OK;
    }
    out->s = strdup(text);
    return out->s != NULL ? GY_OK : fail(err, GY_ENOMEM, "%s: out of memory", source);
}

/* The nearest setting name (edit distance), for "did you mean". */
static const char *nearest(const char *name) {
    const char *best = NULL;
    size_t best_d = (size_t)-1, n = strlen(name);
    if (n > 64) {
        return NULL;
    }
    for (size_t k = 0; k < NSETTINGS; k++) {
        const char *t = table[k].name;
        size_t m = strlen(t), prev[65], cur[65];
        for (size_t j = 0; j <= m && j <= 64; j++) {
            prev[j] = j;
        }
        for (size_t i = 1; i <= n; i++) {
            cur[0] = i;
            for (size_t j = 1; j <= m && j <= 64; j++) {
                size_t sub = prev[j - 1] + (name[i - 1] != t[j - 1]);
                size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
                cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
            }
            memcpy(prev, cur, sizeof cur);
        }
        if (m <= 64 && prev[m] < best_d) {
            best_d = prev[m];
            best = t;
        }
    }
    return best_d <= 3 ? best : NULL;
}

int gy_config_new(gy_config **out) {
    gy_config *cfg = calloc(1, sizeof *cfg);
    if (cfg == NULL) {
        return GY_ENOMEM;
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (parse_value(&table[i], table[i].default_value, "default", &cfg->v[i], NULL) != GY_OK) {
            gy_config_free(cfg); /* a bad default is caught by config.table */
            return GY_ENOMEM;
        }
    }
    *out = cfg;
    return GY_OK;
}

void gy_config_free(gy_config *cfg) {
    if (cfg == NULL) {
        return;
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        free(cfg->v[i].s);
    }
    free(cfg);
}

int gy_config_copy(const gy_config *cfg, gy_config **out) {
    gy_config *c = calloc(1, sizeof *c);
    if (c == NULL) {
        return GY_ENOMEM;
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        c->v[i].i = cfg->v[i].i;
        if (cfg->v[i].s != NULL && (c->v[i].s = strdup(cfg->v[i].s)) == NULL) {
            gy_config_free(c);
            return GY_ENOMEM;
        }
    }
    *out = c;
    return GY_OK;
}

/* Take c's values into cfg (c is emptied and freed). */
static void commit(gy_config *cfg, gy_config *c) {
    for (size_t i = 0; i < NSETTINGS; i++) {
        free(cfg->v[i].s);
        cfg->v[i] = c->v[i];
        c->v[i].s = NULL;
    }
    free(c);
}

static int set_one(gy_config *cfg, const char *name, const char *val, const char *source,
                   bool runtime_only, gy_errmsg *err) {
    long i = setting_index(name);
    if (i < 0) {
        const char *near = nearest(name);
        return fail(err, GY_ENOENT, "%s: no setting '%s'%s%s%s", source, name,
                    near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
    if (runtime_only && !table[i].runtime) {
        return fail(err, GY_EPERM, "%s: %s cannot change while the server runs (restart it)",
                    source, name);
    }
    setting_value v;
    int rc = parse_value(&table[i], val, source, &v, err);
    if (rc != GY_OK) {
        return rc;
    }
    free(cfg->v[i].s);
    cfg->v[i] = v;
    return GY_OK;
}

int gy_config_set(gy_config *cfg, const char *name, const char *value, const char *source,
                  gy_errmsg *err) {
    return set_one(cfg, name, value, source ? source : "set", false, err);
}

int gy_config_set_many(gy_config *cfg, size_t n, const char *const *names,
                       const char *const *values, const char *source, bool runtime_only,
                       gy_errmsg *err) {
    gy_config *c;
    if (gy_config_copy(cfg, &c) != GY_OK) {
        return fail(err, GY_ENOMEM, "out of memory");
    }
    for (size_t k = 0; k < n; k++) {
        int rc = set_one(c, names[k], values[k], source ? source : "set", runtime_only, err);
        if (rc != GY_OK) {
            gy_config_free(c);
            return rc;
        }
    }
    commit(cfg, c);
    return GY_OK;
}

/* --- files ------------------------------------------------------------------------- */

/* The file format, read here rather than by an INI library (Debian's inih
 * has a 200-byte line buffer, turns NUL bytes into silent truncation and
 * indented lines into silent continuations): one `name = value` a line,
 * lines up to GY__CONFIG_LINE_MAX bytes; blank lines and lines whose first
 * non-blank byte is # or ; are comments; ` ;` (after a blank) starts an
 * inline comment; blanks around names and values are dropped. Everything
 * else is an error naming file:line: longer lines, NUL and other control
 * bytes (tab and CR aside), indented settings (continuation lines are not a
 * feature: they would change the setting above without saying so),
 * [sections], lines without '='. */
#define GY__CONFIG_LINE_MAX 4096

/* Quote up to 80 bytes of s for a message: control bytes and bytes past
 * ASCII as \xNN, so nothing from the file reaches a terminal raw. */
static const char *quoted(char *buf, size_t cap, const char *s, size_t len) {
    escape_into(buf, cap, s, len < 80 ? len : 80, true);
    return buf;
}

static bool is_blank(char c) { return c == ' ' || c == '\t'; }

/* One line (without its newline; a CR before it dropped). */
static int load_line(gy_config *c, const char *name, int lineno, char *line, size_t len,
                     const char **above, gy_errmsg *err) {
    char q[400], where[512];
    snprintf(where, sizeof where, "%s:%d", name, lineno);
    if (len > 0 && line[len - 1] == '\r') {
        line[--len] = '\0';
    }
    if (len > GY__CONFIG_LINE_MAX) {
        return fail(err, GY_EINVAL, "%s: line longer than %d bytes (%zu)", where,
                    GY__CONFIG_LINE_MAX, len);
    }
    size_t i = 0;
    while (i < len && is_blank(line[i])) {
        i++;
    }
    if (i == len || line[i] == '#' || line[i] == ';') {
        return GY_OK; /* blank or comment */
    }
    for (size_t k = 0; k < len; k++) {
        unsigned char b = (unsigned char)line[k];
        if ((b < 0x20 && b != '\t') || b == 0x7F) {
            /* Name the setting the line is for, if it has one. */
            const char *eq = memchr(line, '=', len);
            size_t nl = eq != NULL ? (size_t)(eq - line) : 0;
            while (nl > i && is_blank(line[nl - 1])) {
                nl--;
            }
            return fail(err, GY_EINVAL, "%s: %s byte (\\x%02x) at column %zu%s%s%s", where,
                        b == 0 ? "a NUL" : "a control", b, k + 1,
                        nl > i ? " in the value of '" : "",
                        nl > i ? quoted(q, sizeof q, line + i, nl - i) : "", nl > i ? "'" : "");
        }
    }
    if (i > 0) {
        return fail(
            err, GY_EINVAL, "%s: indented line '%s' (continuation lines are not supported%s%s%s)",
            where, quoted(q, sizeof q, line + i, len - i), *above ? "; the setting above is '" : "",
            *above ? *above : "", *above ? "'" : "");
    }
    if (line[0] == '[') {
        return fail(err, GY_EINVAL, "%s: %s: sections are not used; write settings alone", where,
                    quoted(q, sizeof q, line, len));
    }
    char *eq = memchr(line, '=', len);
    if (eq == NULL) {
        return fail(err, GY_EINVAL, "%s: syntax error (expected 'name = value'): '%s'", where,
                    quoted(q, sizeof q, line, len));
    }
    char *nend = eq;
    while (nend > line && is_blank(nend[-1])) {
        nend--;
    }
    *nend = '\0';
    char *val = eq + 1, *vend = line + len;
    while (val < vend && is_blank(*val)) {
        val++;
    }
    for (char *p = val; p < vend; p++) {
        if (*p == ';' && (p == val || is_blank(p[-1]))) {
            vend = p; /* an inline comment */
            break;
        }
    }
    while (vend > val && is_blank(vend[-1])) {
        vend--;
    }
    *vend = '\0';
    if (line[0] == '\0') {
        return fail(err, GY_EINVAL, "%s: no name before '='", where);
    }
    *above = line;
    return set_one(c, line, val, where, false, err);
}

/* Apply `text` (len bytes) to a copy of cfg; commit only if all of it holds. */
static int load(gy_config *cfg, const char *name, char *text, size_t len, gy_errmsg *err) {
    gy_config *c;
    if (gy_config_copy(cfg, &c) != GY_OK) {
        return fail(err, GY_ENOMEM, "out of memory");
    }
    int rc = GY_OK, lineno = 0;
    const char *above = NULL;
    char *p = text, *end = text + len;
    while (rc == GY_OK && p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        p[ll] = '\0'; /* the newline's place (or the buffer's spare byte) */
        rc = load_line(c, name, ++lineno, p, ll, &above, err);
        p += ll + 1;
    }
    if (rc != GY_OK) {
        gy_config_free(c);
        return rc;
    }
    commit(cfg, c);
    return GY_OK;
}

int gy_config_load_file(gy_config *cfg, const char *path, gy_errmsg *err) {
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return fail(err, GY_EIO, "%s: cannot read: %s", path, strerror(errno));
    }
    size_t cap = 8192, len = 0;
    char *text = malloc(cap);
    int rc = GY_OK;
    while (text != NULL) {
        len += fread(text + len, 1, cap - len - 1, fp);
        if (len < cap - 1) {
            break; /* the end, or an error (below) */
        }
        if (cap >= (size_t)64 << 20) {
            rc = fail(err, GY_EINVAL, "%s: larger than 64 MiB", path);
            break;
        }
        char *grown = realloc(text, cap * 2);
        if (grown == NULL) {
            free(text);
            text = NULL;
            break;
        }
        text = grown;
        cap *= 2;
    }
    if (rc == GY_OK && text == NULL) {
        rc = fail(err, GY_ENOMEM, "%s: out of memory", path);
    } else if (rc == GY_OK && ferror(fp)) {
        rc = fail(err, GY_EIO, "%s: cannot read: %s", path, strerror(errno));
    }
    fclose(fp);
    if (rc == GY_OK) {
        rc = load(cfg, path, text, len, err);
    }
    free(text);
    return rc;
}

/* Bytes as a file holds them (NULs included): gy_config_load_file without
 * the file, for the fuzz target (tests/fuzz/fuzz_config.c). */
int gy__config_load_bytes(gy_config *cfg, const char *name, const char *data, size_t len,
                          gy_errmsg *err);
int gy__config_load_bytes(gy_config *cfg, const char *name, const char *data, size_t len,
                          gy_errmsg *err) {
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return fail(err, GY_ENOMEM, "out of memory");
    }
    memcpy(copy, data, len);
    copy[len] = '\0';
    int rc = load(cfg, name, copy, len, err);
    free(copy);
    return rc;
}

int gy_config_load_string(gy_config *cfg, const char *text, const char *name, gy_errmsg *err) {
    size_t len = strlen(text);
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        return fail(err, GY_ENOMEM, "out of memory");
    }
    memcpy(copy, text, len + 1);
    int rc = load(cfg, name ? name : "config", copy, len, err);
    free(copy);
    return rc;
}

/* --- the command line ---------------------------------------------------------------- */

int gy_config_apply_args(gy_config *cfg, int argc, char **argv, const char *default_text,
                         gy_config_action *action, const char **config_path, gy_errmsg *err) {
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"admin-socket", required_argument, NULL, 'a'},
        {"threads", required_argument, NULL, 't'},
        {"set", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    *action = GY_CONFIG_RUN;
    *config_path = NULL;
    /* First pass: the file. */
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        if (ch == 'c') {
            *config_path = optarg;
        } else if (ch == '?') {
            return fail(err, GY_EINVAL, "unknown option '%s' (see --help)", argv[optind - 1]);
        } else if (ch == ':') {
            return fail(err, GY_EINVAL, "option '%s' needs a value (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) {
        return fail(err, GY_EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
    }
    gy_config *c;
    if (gy_config_copy(cfg, &c) != GY_OK) {
        return fail(err, GY_ENOMEM, "out of memory");
    }
    int rc = GY_OK;
    if (*config_path != NULL) {
        rc = gy_config_load_file(c, *config_path, err);
    } else if (default_text != NULL) {
        rc = gy_config_load_string(c, default_text, "(embedded gyre.conf)", err);
    }
    /* Second pass: the rest, in order. */
    optind = 1;
    while (rc == GY_OK && (ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (ch) {
        case 'l':
            rc = set_one(c, "listen", optarg, "--listen", false, err);
            break;
        case 'a':
            rc = set_one(c, "admin_socket", optarg, "--admin-socket", false, err);
            break;
        case 't':
            rc = set_one(c, "threads", optarg, "--threads", false, err);
            break;
        case 's': {
            const char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg) {
                rc = fail(err, GY_EINVAL, "--set '%s': expected NAME=VALUE", optarg);
                break;
            }
            char name[128];
            size_t nl = (size_t)(eq - optarg);
            if (nl >= sizeof name) {
                rc = fail(err, GY_EINVAL, "--set '%s': name too long", optarg);
                break;
            }
            memcpy(name, optarg, nl);
            name[nl] = '\0';
            rc = set_one(c, name, eq + 1, "--set", false, err);
            break;
        }
        case 'h':
            *action = GY_CONFIG_HELP;
            break;
        case 'V':
            *action = GY_CONFIG_VERSION;
            break;
        default:
            break;
        }
    }
    if (rc != GY_OK) {
        gy_config_free(c);
        return rc;
    }
    commit(cfg, c);
    return GY_OK;
}

size_t gy_config_usage(char *buf, size_t size, const char *program) {
    size_t len = 0;
#define OUT(...)                                                                          \
    do {                                                                                  \
        bool room_ = buf != NULL && len < size;                                           \
        int n_ = snprintf(room_ ? buf + len : NULL, room_ ? size - len : 0, __VA_ARGS__); \
        len += n_ > 0 ? (size_t)n_ : 0;                                                   \
    } while (0)
    OUT("usage: %s [--config FILE] [--listen HOST:PORT] [--admin-socket PATH] [--threads N]\n"
        "       [--set NAME=VALUE]... [--help] [--version]\n\n"
        "Settings (config file lines 'name = value', or --set name=value):\n",
        program);
    for (size_t i = 0; i < NSETTINGS; i++) {
        char what[160];
        allowed(&table[i], what, sizeof what);
        OUT("  %-28s %s (default %s%s%s)\n      %s%s\n", table[i].name,
            gy_setting_type_name(table[i].type), table[i].default_value[0] ? "" : "'",
            table[i].default_value, table[i].default_value[0] ? "" : "'", table[i].description,
            table[i].runtime ? "; changes at run time" : "");
        OUT("      allowed: %s\n", what);
    }
#undef OUT
    return len;
}

/* --- reading values --------------------------------------------------------------------- */

int64_t gy_config_int(const gy_config *cfg, const char *name) {
    long i = setting_index(name);
    return i < 0 || is_text(table[i].type) ? 0 : cfg->v[i].i;
}

const char *gy_config_str(const gy_config *cfg, const char *name) {
    long i = setting_index(name);
    return i < 0 || !is_text(table[i].type) || cfg->v[i].s == NULL ? "" : cfg->v[i].s;
}

size_t gy_config_format(const gy_config *cfg, const char *name, char *buf, size_t size) {
    long i = setting_index(name);
    if (i < 0) {
        return 0;
    }
    int64_t n = cfg->v[i].i;
    int len = 0;
    switch (table[i].type) {
    case GY_SETTING_BOOL:
        len = snprintf(buf, size, "%s", n ? "on" : "off");
        break;
    case GY_SETTING_INT:
        len = snprintf(buf, size, "%lld", (long long)n);
        break;
    case GY_SETTING_BYTES:
        if (n != 0 && n % 1073741824LL == 0) {
            len = snprintf(buf, size, "%lldg", (long long)(n / 1073741824LL));
        } else if (n != 0 && n % 1048576 == 0) {
            len = snprintf(buf, size, "%lldm", (long long)(n / 1048576));
        } else if (n != 0 && n % 1024 == 0) {
            len = snprintf(buf, size, "%lldk", (long long)(n / 1024));
        } else {
            len = snprintf(buf, size, "%lld", (long long)n);
        }
        break;
    case GY_SETTING_DURATION:
        if (n != 0 && n % 3600000 == 0) {
            len = snprintf(buf, size, "%lldh", (long long)(n / 3600000));
        } else if (n != 0 && n % 60000 == 0) {
            len = snprintf(buf, size, "%lldm", (long long)(n / 60000));
        } else if (n % 1000 == 0) {
            len = snprintf(buf, size, "%llds", (long long)(n / 1000));
        } else {
            len = snprintf(buf, size, "%lldms", (long long)n);
        }
        break;
    default:
        len = snprintf(buf, size, "%s", cfg->v[i].s ? cfg->v[i].s : "");
    }
    return len > 0 ? (size_t)len : 0;
}
