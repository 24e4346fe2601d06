/* gyre/object.h: refcounted objects, their types, and reference fields.
 *
 * A Gyre object is a C struct whose first member is a gy_object header:
 *
 *     typedef struct node { gy_object ob; gy_ref next; int value; } node;
 *
 * Objects are allocated with gy_new from Gyre's arena (see core/DESIGN.md),
 * start with a count of 1 owned by the caller, and are finalized and freed
 * at once when the last reference is dropped on the owning thread.
 *
 * Reference effect, as CPython's refcounts.dat records it: every function
 * below says whether it returns a NEW reference (the caller must drop it),
 * or STEALS the reference passed (the caller must not drop it). Nothing in
 * Gyre returns a borrowed reference that another thread could free.
 *
 * Thread-safety: gy_incref, gy_decref, gy_load, gy_store and gy_refcount are
 * safe on any object from any attached thread. A thread must be attached
 * (gyre/runtime.h) to call anything here.
 */
#ifndef GYRE_OBJECT_H
#define GYRE_OBJECT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gyre/common.h"
#include "gyre/error.h"

/* The object header: 8 bytes, the two halves of a biased reference count.
 * Never touch the fields; they are named gy__ to say so. */
typedef struct gy_object {
    _Atomic uint32_t gy__local; /* the owner thread's count (relaxed load+store) */
    _Atomic int32_t gy__shared; /* other threads' count << 2 | QUEUED | MERGED */
} gy_object;

/* A reference field inside an object. Read it with gy_load, write it with
 * gy_store; initialise zeroed memory needs nothing (NULL). */
typedef struct gy_ref {
    _Atomic(gy_object *) gy__ptr;
} gy_ref;

/* traverse calls visit(child, arg) for each object the object references
 * (NULL fields skipped); a non-zero return from visit stops the traversal and
 * is returned. GY_VISIT does this for one gy_ref field.
 * The contract for the collector (collector/DESIGN.md section 9): traverse
 * may run on the collector's thread while other threads use the object
 * (in gc_mode concurrent; in stw it runs with the world stopped). So it
 * reads only gy_ref fields, through GY_VISIT (an atomic load), and storage
 * the type resizes itself follows the rules of gy_list and gy_dict: slots
 * that are gy_ref, a length read atomically, old storage retired through
 * the epoch scheme, never freed while a traverse may read it. It takes no
 * lock, allocates nothing, calls no Gyre function but visit, and never
 * blocks. A reference it misses or sees twice because a mutator moved it is
 * the barriers' business (gy_store and the container functions), not its. */
typedef int (*gy_visit_fn)(gy_object *child, void *arg);
typedef int (*gy_traverse_fn)(gy_object *self, gy_visit_fn visit, void *arg);
/* clear drops every reference the object holds and releases its backing
 * storage, leaving a valid, empty object (it may be called more than once).
 * It must not take a new reference to the object it clears (resurrection
 * belongs in finalize): when clear runs on a dying object, the object is
 * freed when clear returns. */
typedef void (*gy_clear_fn)(gy_object *self);
/* finalize runs at most once per object, before clear, with the object still
 * intact; it may store a new reference to the object somewhere (resurrect).
 * Where it runs: when the last reference goes, on the thread that dropped it
 * (loop-affine objects: on their owner thread). For cyclic trash: in
 * gc_mode stw on the thread that collects; in concurrent mode on the
 * collector's own thread, except for GY_TYPE_LOOP_AFFINE objects without
 * GY_TYPE_FINALIZE_ANY_THREAD, which run on their owner loop at a safe
 * point (their trash set then waits for a later collection). No Gyre lock
 * is held while it runs. The same holds for clear and for weakref
 * callbacks; gc callbacks (gyre/gc.h) run on the collecting thread. */
typedef void (*gy_finalize_fn)(gy_object *self);

/* Type flags. */
enum {
    GY_TYPE_LEAF = 1u << 0,    /* holds no references: never tracked; traverse/clear optional */
    GY_TYPE_ACYCLIC = 1u << 1, /* holds references but is never part of a cycle: never tracked */
    /* finalized, cleared and freed only on the thread that allocated it, in
     * both gc modes (the collector hands that work to the owner loop) */
    GY_TYPE_LOOP_AFFINE = 1u << 2,
    /* with LOOP_AFFINE: finalize may run on any thread (in concurrent mode,
     * the collector's), clear and free still on the owner */
    GY_TYPE_FINALIZE_ANY_THREAD = 1u << 3,
    GY_TYPE_LEGACY_FINALIZER = 1u << 4, /* finalize must not meet cyclic trash (uncollectable) */
};

/* Internal state Gyre keeps in each type; zero-initialise it. */
typedef struct gy__type_private {
    _Atomic uint32_t index; /* 0 until the first gy_new of the type */
} gy__type_private;

/* A type descriptor. Lives as long as any object of it (normally static).
 * Fill the public fields; leave `gy__priv` zero. */
typedef struct gy_type {
    const char *name;        /* for stats and leak reports */
    size_t size;             /* sizeof the struct, header included; 8..4096 */
    gy_traverse_fn traverse; /* required unless GY_TYPE_LEAF */
    gy_clear_fn clear;       /* required unless GY_TYPE_LEAF */
    gy_finalize_fn finalize; /* optional */
    unsigned flags;          /* GY_TYPE_* */
    gy__type_private gy__priv;
} gy_type;

/* Visit one gy_ref field from a traverse function. */
#define GY_VISIT(field, visit, arg)                                                           \
    do {                                                                                      \
        gy_object *gy__child = atomic_load_explicit(&(field)->gy__ptr, memory_order_acquire); \
        if (gy__child != NULL) {                                                              \
            int gy__rc = (visit)(gy__child, (arg));                                           \
            if (gy__rc != 0) {                                                                \
                return gy__rc;                                                                \
            }                                                                                 \
        }                                                                                     \
    } while (0)

/* gy_new(type, &ptr): allocate a zeroed object of `type` with a count of 1
 * owned by the calling thread and store a NEW reference in *ptr (any pointer
 * to a struct that starts with gy_object). Records the caller's file:line for
 * allocation tracing. Returns 0; GY_ENOMEM (nothing allocated, *ptr
 * untouched); GY_EINVAL (bad type: size out of range, traverse/clear missing
 * on a non-leaf type); GY_ERANGE (more than 500 types); GY_ESTATE (thread
 * not attached). */
#define gy_new(type, outp) gy__new_at((type), (outp), __FILE__, __LINE__)
GY_API int gy__new_at(gy_type *type, void *outp, const char *file, int line);

/* gy_incref: add a reference. `obj` must be a live Gyre object. */
GY_API void gy_incref(void *obj);

/* gy_decref: drop a reference (STEALS it). When it was the last one on the
 * owning thread, the object is finalized and freed before this returns
 * (deeply nested frees may be deferred on loop threads: core/DESIGN.md). */
GY_API void gy_decref(void *obj);

/* gy_xincref / gy_xdecref: the same, doing nothing for NULL. */
GY_API void gy_xincref(void *obj);
GY_API void gy_xdecref(void *obj);

/* gy_refcount: the number of references (the seed's sys.getrefcount without
 * the argument's own). Exact while no other thread changes it. */
GY_API size_t gy_refcount(const void *obj);

/* gy_type_of: the object's type (borrowed; types are static). */
GY_API const gy_type *gy_type_of(const void *obj);

/* gy_load: a NEW reference to what `field` holds, or NULL. Correct when
 * another thread stores to the field at the same moment (try-incref). */
GY_API gy_object *gy_load(gy_ref *field);

/* gy_store: make `field` hold `value` (NULL allowed; a new reference is
 * taken, the caller keeps its own) and drop the old value's reference after
 * the swap. The write-barrier hook of the collector. */
GY_API void gy_store(gy_ref *field, void *value);

/* gy_store_steal: like gy_store but STEALS the caller's reference to value. */
GY_API void gy_store_steal(gy_ref *field, void *value);

/* gy_ref_clear: gy_store(field, NULL). */
GY_API void gy_ref_clear(gy_ref *field);

/* Resizable storage a traverse may read concurrently (the rules of the
 * traverse contract above, which gy_list and gy_dict follow).
 * gy_storage_alloc: SIZE bytes (aligned to 16, contents undefined) counted
 * against OWNER's type (gy_type_get_stats bytes) and, when tracing, OWNER's
 * allocation trace; OWNER is the object that will hold the storage. Returns
 * NULL when SIZE is 0 or memory is short (no failure is printed).
 * gy_storage_retire: give back storage of SIZE bytes from gy_storage_alloc
 * once OWNER no longer points to it (or never did): it is uncounted at once,
 * its bytes stay readable and unchanged for any thread that could still
 * load the old pointer, and it is reused only after every thread has passed
 * a safe point (an epoch grace period). NULL is ignored.
 * Both must be called on a thread attached to the runtime; neither touches a
 * count or takes a lock another thread can hold. */
GY_API void *gy_storage_alloc(void *owner, size_t size);
GY_API void gy_storage_retire(void *owner, void *storage, size_t size);

/* Scoped release (the seed's context manager): a variable declared
 *     GY_AUTO node *n = NULL;
 * is gy_xdecref'd on every path out of its block. GY_STEAL(n) returns n and
 * sets the variable to NULL, to hand the reference on. */
#define GY_AUTO __attribute__((cleanup(gy__auto_release)))
#define GY_STEAL(var) ((__typeof__(var))gy__steal((void **)&(var)))
GY_API void gy__auto_release(void *varp);
GY_API void *gy__steal(void **varp);

/* A stable object id: never reused for another object. */
typedef struct gy_id {
    uint64_t addr;
    uint64_t serial;
} gy_id;

/* gy_object_id: the id of a live object. */
GY_API gy_id gy_object_id(const void *obj);

/* gy_object_from_id: a NEW reference to the object with this id in *out, or
 * GY_ESTALE when it no longer exists (or never did). */
GY_API int gy_object_from_id(gy_id id, void *outp);

/* Per-type counters, summed over every thread on read. */
typedef struct gy_type_stats {
    int64_t live;       /* objects alive */
    int64_t bytes;      /* their cells plus backing storage */
    uint64_t allocated; /* since the runtime started */
    uint64_t freed;
} gy_type_stats;

/* gy_type_get_stats: counters of one type (zero for a type never used). */
GY_API void gy_type_get_stats(const gy_type *type, gy_type_stats *out);

/* gy_types_foreach: call fn for every type that has been allocated, with its
 * counters. Stops when fn returns non-zero and returns that value. */
GY_API int gy_types_foreach(int (*fn)(const gy_type *type, const gy_type_stats *stats, void *arg),
                            void *arg);

#endif /* GYRE_OBJECT_H */
