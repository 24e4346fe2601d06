/* spin: -O0 -DSAFETY -m100000 -w20 */
/* MUTANT of weak_upgrade.pml: the weak reference is not marked reachable. */
/*
 * weak_upgrade.pml: gy_weakref_get races the death of its referent and the
 * death of the weak reference itself (core/src/weakref.c, core/src/refcount.c;
 * core/DESIGN.md section 11).
 *
 * Two objects: the referent T, owned by the Owner thread, which holds its one
 * reference (T has WEAKREFS), and the weak reference W to T, owned by the
 * Upgrader thread, which holds its one reference (W is PUBLISHED: it was
 * marked reachable when registered). The Owner drops T: gy_decref ->
 * merge_zero_local (the CAS path: WEAKREFS) -> object_free_now (T's type may
 * have a finalizer) -> gy__weakref_clear_all (under the stripe lock: unlink W,
 * try-incref W; then W's callback, then gy_decref(W)) -> clear -> free. The
 * Upgrader may call gy_weakref_get(W) (under the stripe lock: read target,
 * try-incref T), drops what it got (so T may die on its thread instead), then
 * drops W (W's clear, weakref_clear, unlinks W under the lock and releases
 * the callback's argument). Either object may be freed on either thread.
 *
 * Each atomic block is one atomic access of the C code (`at` names the C
 * function); a CAS loop whose body has no side effect is one read-modify-write;
 * the stripe lock is a mutex (the accesses under it are steps of their own).
 * Cells are never reused: every thread stays inside its epoch section, so a
 * freed cell keeps the dead header and a late try-incref reads it and fails.
 * Sequentially consistent memory.
 *
 * Checked: no access after free (of T, of W, of W's callback argument); each
 * freed exactly once; T's finalizer at most once; no successful try-incref of
 * an object being freed (the upgrade, and gy__weakref_clear_all's of W); ghost
 * references == ref_local (if owned) + count(ref_shared) for both, always; at
 * the end both are freed and W is unlinked.
 */

#define QUEUED     1
#define MERGED     2
#define PUBLISHED  4
#define ID_TAKEN   8
#define FINALIZED 16
#define WEAKREFS  32
#define DOOMED    64
#define SHIFT      7
#define ONE      128
#define DEAD  MERGED
#define UNOWNED  255
#define CNT(w)   ((w) >> SHIFT)
#define OWNED(l) ((l) == UNOWNED -> 0 : (l))

#define T 0
#define W 1
#define OWNER 0     /* the thread that owns T */
#define UPGRADER 1  /* the thread that owns W */
#define OWNER_OF(o) (o) /* thread OWNER owns T, UPGRADER owns W */

mtype = { gy_decref, free_simple, merge_zero_local, object_free_now, type_clear, weakref_clear,
          release_cell, decref_shared, gy__try_incref, gy_weakref_get, gy__weakref_clear_all,
          callback, arg_release, stripe_lock, stripe_unlock, use };
hidden mtype at;

int  ref_shared[2];
byte ref_local[2];
bit  wt = 1;       /* W.target == T (W is in T's list); the stripe lock guards it */
bit  lock = 0;     /* the stripe's mutex */
bit  arg_live = 1; /* W's callback argument (released by weakref_clear) */

/* ghosts */
byte refs[2];
bit  has_fin, freeing[2], freed[2];
byte nfin, nfree[2];
bit  owner_done, upgrader_done;

#define ALIVE(o) assert(!freed[o])
#define LOCK     atomic { lock == 0 -> at = stripe_lock; lock = 1 }
#define UNLOCK   atomic { at = stripe_unlock; lock = 0 }

inline release(o) {
  atomic { at = release_cell; ALIVE(o); assert(refs[o] == 0 && CNT(ref_shared[o]) == 0);
    freed[o] = true; nfree[o]++; ref_local[o] = UNOWNED; ref_shared[o] = DEAD }
}

/* gy__try_incref(h = me, o): the owner's path or the CAS (one RMW). */
inline try_incref(o, me, ok) {
  atomic { at = gy__try_incref;
    if
    :: me == OWNER_OF(o) && ref_local[o] != UNOWNED && !(ref_shared[o] & DOOMED) -> /* owner */
      ALIVE(o); assert(!freeing[o]); ref_local[o]++; refs[o]++; ok = true
    :: else ->
      if
      :: (ref_shared[o] & DOOMED) || ((ref_shared[o] & MERGED) && CNT(ref_shared[o]) == 0) ->
        ok = false
      :: else -> ALIVE(o); assert(!freeing[o]); ref_shared[o] = ref_shared[o] + ONE; refs[o]++; ok = true
      fi
    fi }
}

/* decref_shared's CAS loop as one RMW; sets dealloc (queue cannot happen:
 * every other reference here is counted where its holder took it). */
inline decref_shared_(o, s, dealloc) {
  atomic { at = decref_shared; ALIVE(o); s = ref_shared[o] - ONE; dealloc = false;
    if
    :: ref_shared[o] & MERGED -> dealloc = (CNT(s) == 0 && !(ref_shared[o] & QUEUED))
    :: else -> assert(CNT(s) >= 0)
    fi;
    ref_shared[o] = s; refs[o]-- }
}

/* The owner's gy_decref up to the point where it must free or merge: sets
 * shared (merged: decref_shared instead) or zero (local reached 0). */
inline decref_owner_part(o, shared, zero) {
  atomic { at = gy_decref; ALIVE(o); shared = false; zero = false;
    if
    :: ref_local[o] == UNOWNED -> shared = true
    :: ref_local[o] != UNOWNED && ref_local[o] > 1 -> ref_local[o]--; refs[o]--
    :: ref_local[o] == 1 -> ref_local[o] = 0; refs[o]--; zero = true
    :: ref_local[o] == 0 -> assert(false)
    fi }
}

/* merge_zero_local: sets dealloc. */
inline merge_zero_local_(o, s, dealloc) {
  atomic { at = merge_zero_local; ALIVE(o); s = ref_shared[o] }
  if
  :: s == 0 -> dealloc = true
  :: else ->
    atomic { at = merge_zero_local; ALIVE(o); ref_local[o] = UNOWNED }
    atomic { at = merge_zero_local; ALIVE(o); ref_shared[o] = ref_shared[o] | MERGED;
      dealloc = (CNT(ref_shared[o]) == 0 && !(ref_shared[o] & QUEUED)) }
  fi
}

/* weakref_clear: W's clear (W is dying). */
inline weakref_clear_() {
  LOCK;
  atomic { at = weakref_clear; ALIVE(W); wt = 0 } /* unlink_locked if target != NULL */
  UNLOCK;
  atomic { at = arg_release; ALIVE(W); arg_live = 0 }
}

/* object_free_now(W): no finalizer, no weak references; clear is weakref_clear. */
inline free_W() {
  atomic { at = object_free_now; ALIVE(W); freeing[W] = true }
  weakref_clear_();
  release(W)
}

/* gy_decref(W) on thread me, and W's free if it was the last. */
inline decref_W(me) {
  if
  :: me == UPGRADER ->
    decref_owner_part(W, sh, zero)
  :: else -> sh = true; zero = false
  fi;
  if
  :: sh -> decref_shared_(W, s, dealloc)
  :: zero ->
    /* free_simple: a shared word of 0 frees here, after W's clear */
    atomic { at = free_simple; ALIVE(W); s = ref_shared[W] }
    if
    :: s == 0 ->
      atomic { at = free_simple; freeing[W] = true }
      weakref_clear_();
      atomic { at = free_simple; ALIVE(W); freeing[W] = false; s = ref_local[W] != 0 }
      if
      :: s -> dealloc = false /* clear took a reference: it lives */
      :: else ->
        atomic { at = free_simple; ALIVE(W); s = ref_shared[W] }
        if
        :: s != 0 -> merge_zero_local_(W, s, dealloc)
        :: else -> release(W); dealloc = false
        fi
      fi
    :: else -> merge_zero_local_(W, s, dealloc)
    fi
  :: else -> dealloc = false
  fi;
  if
  :: dealloc -> free_W()
  :: else -> skip
  fi
}

/* gy__weakref_clear_all(T) on thread me: one batch (T has one weakref). */
inline clear_all_T(me) {
  LOCK;
  atomic { at = gy__weakref_clear_all; ALIVE(T); got = wt; wt = 0 } /* slot_find, unlink_locked */
  if
  :: got -> try_incref(W, me, got)
  :: else -> skip
  fi;
  UNLOCK;
  if
  :: got ->
    atomic { at = callback; ALIVE(W); assert(arg_live) }
    decref_W(me)
  :: else -> skip
  fi
}

/* object_free_now(T) on thread me. */
inline free_T(me) {
  atomic { at = object_free_now; ALIVE(T); s = ref_shared[T];
    if
    :: has_fin && !(s & FINALIZED) -> alive = true
    :: else -> alive = false; freeing[T] = true
    fi }
  if
  :: alive ->
    atomic { at = object_free_now; ALIVE(T); ref_local[T] = UNOWNED }
    atomic { at = object_free_now; ALIVE(T); /* CAS loop: the finalizer's reference */
      ref_shared[T] = (ref_shared[T] | MERGED | FINALIZED) + ONE; refs[T]++; nfin++; assert(nfin == 1) }
    /* the finalizer (does nothing here) */
    atomic { at = object_free_now; ALIVE(T); /* CAS loop: drop it; a count left = resurrected */
      ref_shared[T] = ref_shared[T] - ONE; refs[T]--;
      if
      :: CNT(ref_shared[T]) != 0 -> skip
      :: else -> alive = false; freeing[T] = true
      fi }
  :: else -> skip
  fi;
  if
  :: !alive ->
    clear_all_T(me); /* s & WEAKREFS */
    atomic { at = type_clear; ALIVE(T) }
    release(T)
  :: else -> skip /* resurrected: an upgrade during the finalizer */
  fi
}

proctype Owner() {
  int s; bool alive, dealloc, sh, zero, got;
  decref_owner_part(T, sh, zero);
  assert(zero);
  atomic { at = free_simple; ALIVE(T); assert(ref_shared[T] != 0) } /* WEAKREFS */
  merge_zero_local_(T, s, dealloc);
  if
  :: dealloc -> free_T(OWNER)
  :: else -> skip
  fi;
  owner_done = true
}

proctype Upgrader() {
  int s; bool alive, dealloc, sh, zero, got, ok;
  if
  :: /* gy_weakref_get(W) */
    LOCK;
    atomic { at = gy_weakref_get; ALIVE(W); ok = wt }
    if
    :: ok -> try_incref(T, UPGRADER, ok)
    :: else -> skip
    fi;
    UNLOCK;
    if
    :: ok ->
      atomic { at = use; ALIVE(T) }
      /* gy_decref(T): not T's owner */
      decref_shared_(T, s, dealloc);
      if
      :: dealloc -> free_T(UPGRADER)
      :: else -> skip
      fi
    :: else -> skip
    fi
  :: skip
  fi;
  decref_W(UPGRADER);
  upgrader_done = true
}

active proctype monitor() {
  assert(refs[T] == OWNED(ref_local[T]) + CNT(ref_shared[T]) &&
         refs[W] == OWNED(ref_local[W]) + CNT(ref_shared[W]))
}

active proctype end_check() {
  atomic { owner_done && upgrader_done ->
    assert(freed[T] && freed[W] && nfree[T] == 1 && nfree[W] == 1 && wt == 0 && lock == 0) }
}

init {
  atomic {
    ref_local[T] = 1; ref_shared[T] = WEAKREFS; refs[T] = 1;
    /* MUTANT (gy__weakref_new_full): no gy__object_mark_reachable(&wr->ob), so
     * W's shared word stays 0 and its owner frees it by free_simple's fast path. */
    ref_local[W] = 1; ref_shared[W] = 0; refs[W] = 1;
    if
    :: has_fin = 1
    :: has_fin = 0
    fi;
    run Owner();
    run Upgrader()
  }
}
