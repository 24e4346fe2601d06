/* core/src/failpoint.c: the failpoint table behind gy_failpoint().
 *
 * A fixed table of 64 slots. A slot's name is written once, under
 * `config_lock`, before the slot is published by raising `nslots` (release);
 * it never changes afterwards, so checks read names without a lock. The spec
 * of a slot is a generation-stamped set of atomics: reconfiguring bumps `gen`
 * so a check that raced with it counts against one spec or the other.
 * Off builds keep the API (returning GY_ENOTSUP) so callers need no #if.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "gyre/failpoint.h"
#include "gyre/failpoint_names.h"
#include "internal.h"

#define FP_MAX 64
#define FP_NAME_MAX 48

typedef enum { FP_OFF, FP_COUNT, FP_NTH, FP_FROM, FP_PROB } fp_mode;

typedef struct fp_slot {
    char name[FP_NAME_MAX]; /* immutable once published */
    _Atomic int mode;       /* fp_mode; relaxed: counters order nothing */
    _Atomic uint64_t n;     /* NTH/FROM threshold */
    _Atomic uint64_t prob;  /* PROB: fire when hash < prob (0..2^64-1 scale) */
    _Atomic uint64_t seed;  /* PROB seed */
    _Atomic uint64_t hits;  /* checks since configured */
    _Atomic uint64_t fired; /* firings since configured */
} fp_slot;

static fp_slot slots[FP_MAX];
/* Synchronization: release when a slot is published, acquire when read. */
static _Atomic size_t nslots;
/* Synchronization: count of slots whose mode is not OFF; the fast path of a
 * check reads it relaxed (a check racing with configuration may miss it). */
static _Atomic size_t nactive;
static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static fp_slot *fp_find(const char *name) {
    size_t n = atomic_load_explicit(&nslots, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(slots[i].name, name) == 0) {
            return &slots[i];
        }
    }
    return NULL;
}

/* splitmix64: a full-period mix, so hit k of seed s gives a uniform draw. */
static uint64_t fp_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

void gy_failpoint_breakpoint(const char *name, uint64_t hit) {
    /* An empty asm keeps the call from being optimised away. */
    __asm__ volatile("" : : "r"(name), "r"(hit) : "memory");
}

bool gy_failpoints_available(void) { return GY_FAILPOINTS != 0; }

static int fp_parse_u64(const char *s, uint64_t *out) {
    if (*s < '0' || *s > '9') {
        return -1;
    }
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0') {
        return -1;
    }
    *out = v;
    return 0;
}

static const char *const fp_known[] = {
#define FP_NAME(name, what) name,
    GY_FAILPOINT_NAMES(FP_NAME)
#undef FP_NAME
};
#define FP_KNOWN (sizeof fp_known / sizeof *fp_known)

bool gy_failpoint_known(const char *name) {
    if (name == NULL) {
        return false;
    }
    if (strncmp(name, "test.", 5) == 0 && name[5] != '\0') {
        return true; /* free for tests of the machinery */
    }
    for (size_t i = 0; i < FP_KNOWN; i++) {
        if (strcmp(fp_known[i], name) == 0) {
            return true;
        }
    }
    return false;
}

const char *gy_failpoint_name(size_t i) { return i < FP_KNOWN ? fp_known[i] : NULL; }

static int fp_set_locked(const char *name, const char *spec, gy_errmsg *err) {
    size_t len = strlen(name);
    if (len == 0 || len >= FP_NAME_MAX) {
        return gy__errmsg_set(err, GY_EINVAL, "failpoint name '%s' must be 1..%d bytes", name,
                              FP_NAME_MAX - 1);
    }
    if (!gy_failpoint_known(name)) {
        return gy__errmsg_set(err, GY_EINVAL,
                              "unknown failpoint '%s' (known: alloc, internal, gc.alloc, "
                              "gc.worklist, gc.side, race.*; gyre/failpoint_names.h)",
                              name);
    }
    fp_mode mode;
    uint64_t n = 0, prob = 0, seed = 1;
    if (strcmp(spec, "off") == 0) {
        mode = FP_OFF;
    } else if (strcmp(spec, "count") == 0) {
        mode = FP_COUNT;
    } else if (strncmp(spec, "nth:", 4) == 0 || strncmp(spec, "from:", 5) == 0) {
        mode = spec[0] == 'n' ? FP_NTH : FP_FROM;
        if (fp_parse_u64(strchr(spec, ':') + 1, &n) != 0 || n == 0) {
            return gy__errmsg_set(err, GY_EINVAL, "failpoint '%s': '%s' needs a count >= 1", name,
                                  spec);
        }
    } else if (strncmp(spec, "prob:", 5) == 0) {
        mode = FP_PROB;
        char *end;
        double p = strtod(spec + 5, &end);
        if (end == spec + 5 || p < 0.0 || p > 1.0 ||
            (*end != '\0' && (*end != ':' || fp_parse_u64(end + 1, &seed) != 0))) {
            return gy__errmsg_set(err, GY_EINVAL,
                                  "failpoint '%s': '%s' is not prob:P[:SEED] with 0 <= P <= 1",
                                  name, spec);
        }
        prob = p >= 1.0 ? UINT64_MAX : (uint64_t)(p * 18446744073709551616.0);
    } else {
        return gy__errmsg_set(
            err, GY_EINVAL,
            "failpoint '%s': unknown spec '%s' (off, count, nth:N, from:N, prob:P[:SEED])", name,
            spec);
    }

    fp_slot *slot = fp_find(name);
    if (slot == NULL) {
        size_t i = atomic_load_explicit(&nslots, memory_order_relaxed);
        if (i == FP_MAX) {
            return gy__errmsg_set(err, GY_ENOMEM, "failpoint table full (%d names)", FP_MAX);
        }
        slot = &slots[i];
        memcpy(slot->name, name, len + 1);
        /* release: the name is complete before a reader can find the slot. */
        atomic_store_explicit(&nslots, i + 1, memory_order_release);
    }
    int was_active = atomic_load_explicit(&slot->mode, memory_order_relaxed) != FP_OFF;
    /* Turn the slot off while its parameters change, then set the mode last. */
    atomic_store_explicit(&slot->mode, FP_OFF, memory_order_relaxed);
    atomic_store_explicit(&slot->n, n, memory_order_relaxed);
    atomic_store_explicit(&slot->prob, prob, memory_order_relaxed);
    atomic_store_explicit(&slot->seed, seed, memory_order_relaxed);
    atomic_store_explicit(&slot->hits, 0, memory_order_relaxed);
    atomic_store_explicit(&slot->fired, 0, memory_order_relaxed);
    /* release: parameters are visible to a check that acquires the mode. */
    atomic_store_explicit(&slot->mode, (int)mode, memory_order_release);
    int is_active = mode != FP_OFF;
    if (is_active != was_active) {
        /* relaxed: only a hint for the fast path, ordered by the mode store. */
        atomic_fetch_add_explicit(&nactive, is_active ? 1 : (size_t)-1, memory_order_relaxed);
    }
    return GY_OK;
}

int gy_failpoint_set(const char *name, const char *spec, gy_errmsg *err) {
    if (!GY_FAILPOINTS) {
        return gy__errmsg_set(err, GY_ENOTSUP,
                              "failpoints are not compiled in (GY_FAILPOINTS=OFF)");
    }
    if (name == NULL || spec == NULL) {
        return gy__errmsg_set(err, GY_EINVAL, "failpoint name and spec are required");
    }
    pthread_mutex_lock(&config_lock);
    int rc = fp_set_locked(name, spec, err);
    pthread_mutex_unlock(&config_lock);
    return rc;
}

int gy_failpoint_set_env(const char *list, gy_errmsg *err) {
    if (!GY_FAILPOINTS) {
        return gy__errmsg_set(err, GY_ENOTSUP,
                              "failpoints are not compiled in (GY_FAILPOINTS=OFF)");
    }
    char entry[FP_NAME_MAX + 64];
    const char *p = list;
    while (p != NULL && *p != '\0') {
        const char *end = strpbrk(p, ";,");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= sizeof entry) {
            return gy__errmsg_set(err, GY_EINVAL, "failpoint entry too long: '%.*s'", (int)len, p);
        }
        memcpy(entry, p, len);
        entry[len] = '\0';
        p = end ? end + 1 : NULL;
        if (len == 0) {
            continue;
        }
        char *eq = strchr(entry, '=');
        if (eq == NULL) {
            return gy__errmsg_set(err, GY_EINVAL, "failpoint entry '%s' is not name=spec", entry);
        }
        *eq = '\0';
        int rc = gy_failpoint_set(entry, eq + 1, err);
        if (rc != GY_OK) {
            return rc;
        }
    }
    return GY_OK;
}

/* The environment's failpoints, parsed once (at the first check or at
 * gy__failpoint_env_check, whichever comes first); its error is kept. */
static int env_rc;
static gy_errmsg env_err;

static void fp_load_env(void) {
    const char *env = getenv("GY_FAILPOINTS");
    if (env != NULL && GY_FAILPOINTS) {
        env_rc = gy_failpoint_set_env(env, &env_err);
        if (env_rc != GY_OK) {
            gy__log(GY_LOG_ERROR, "core", "GY_FAILPOINTS: %s", env_err.text);
        }
    }
}

int gy__failpoint_env_check(gy_errmsg *err) {
    pthread_once(&env_once, fp_load_env);
    if (env_rc != GY_OK) {
        return gy__errmsg_set(err, env_rc, "GY_FAILPOINTS: %s", env_err.text);
    }
    return GY_OK;
}

void gy_failpoint_reset_all(void) {
    pthread_mutex_lock(&config_lock);
    size_t n = atomic_load_explicit(&nslots, memory_order_relaxed);
    for (size_t i = 0; i < n; i++) {
        (void)fp_set_locked(slots[i].name, "off", NULL);
    }
    pthread_mutex_unlock(&config_lock);
}

uint64_t gy_failpoint_hits(const char *name) {
    fp_slot *slot = fp_find(name);
    return slot ? atomic_load_explicit(&slot->hits, memory_order_relaxed) : 0;
}

uint64_t gy_failpoint_fired(const char *name) {
    fp_slot *slot = fp_find(name);
    return slot ? atomic_load_explicit(&slot->fired, memory_order_relaxed) : 0;
}

bool gy__failpoint_check(const char *name) {
    if (!GY_FAILPOINTS) {
        return false;
    }
    pthread_once(&env_once, fp_load_env);
    if (atomic_load_explicit(&nactive, memory_order_relaxed) == 0) {
        return false;
    }
    fp_slot *slot = fp_find(name);
    if (slot == NULL) {
        return false;
    }
    /* acquire: pairs with the release store of the mode in fp_set_locked. */
    int mode = atomic_load_explicit(&slot->mode, memory_order_acquire);
    if (mode == FP_OFF) {
        return false;
    }
    /* relaxed: the count is the only thing this increment publishes. */
    uint64_t hit = atomic_fetch_add_explicit(&slot->hits, 1, memory_order_relaxed) + 1;
    bool fire = false;
    switch ((fp_mode)mode) {
    case FP_OFF: /* handled above */
    case FP_COUNT:
        break;
    case FP_NTH:
        fire = hit == atomic_load_explicit(&slot->n, memory_order_relaxed);
        break;
    case FP_FROM:
        fire = hit >= atomic_load_explicit(&slot->n, memory_order_relaxed);
        break;
    case FP_PROB: {
        uint64_t seed = atomic_load_explicit(&slot->seed, memory_order_relaxed);
        uint64_t prob = atomic_load_explicit(&slot->prob, memory_order_relaxed);
        fire = prob == UINT64_MAX || fp_mix(seed * 0x100000001b3ULL ^ hit) < prob;
        break;
    }
    }
    if (fire) {
        atomic_fetch_add_explicit(&slot->fired, 1, memory_order_relaxed);
        gy_failpoint_breakpoint(name, hit);
    }
    return fire;
}
