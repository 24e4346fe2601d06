/* spin: -O0 -DSAFETY -m100000 -w20 */
/* MUTANT of last_decref_vs_load.pml: gy__try_incref ignores MERGED. */
/*
 * last_decref_vs_load.pml: the owner's last decrement of a published object
 * races a gy_load on another thread (core/src/refcount.c).
 *
 * Object O is owned by the Owner process and held only by the gy_ref field F
 * (its reference is counted in ref_local; ref_shared = PUBLISHED). The Owner
 * clears F (gy_ref_clear -> gy_decref -> free_simple -> merge_zero_local ->
 * object_free_now). O's type may or may not have a finalizer (chosen at the
 * start); the finalizer may resurrect O by storing it into the global field
 * G, which the Owner clears afterwards (the second death, without finalizer).
 * The Loader gy_loads F or G (try-incref, re-read, undo on change) and drops
 * what it got, so it is also a non-owner decrementer that may free O.
 *
 * Each atomic block is one atomic access of the C code (`at` names the C
 * function); a CAS loop whose body has no side effect is one read-modify-write
 * (its failed iterations change nothing). Sequentially consistent memory. The
 * cell is never reused (every thread stays inside its epoch section here), so
 * a freed cell keeps the dead header (ref_local UNOWNED, ref_shared MERGED|0).
 *
 * Checked: no access after free; freed exactly once (and at the end, nothing
 * left); finalizer at most once; no successful try-incref of an object being
 * freed; ghost references held == ref_local (if owned) + count(ref_shared)
 * in every state; a try-incref never fails while a field still holds O.
 */

/* ref_shared: count << 7 | flags (core/src/heap.h) */
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

mtype = { gy_store_steal, gy_decref, free_simple, merge_zero_local, object_free_now,
          finalize, gy_incref, gy__object_mark_reachable, type_clear, release_cell, gy_load,
          gy__try_incref, decref_shared, use };
hidden mtype at; /* the C function of the step just taken (trails only) */

int  ref_shared = PUBLISHED; /* O.gy__shared */
byte ref_local = 1;          /* O.gy__local: written by the owner only */
bit  F = 1;              /* gy_ref F holds O */
bit  G = 0;              /* gy_ref G holds O (the finalizer's resurrection) */

/* ghosts */
byte refs = 1;           /* references held: F's */
bit  has_fin;            /* O's type has a finalizer */
bit  freeing;            /* past the last point where O could live on */
bit  freed;
byte nfin, nfree;
bit  owner_done, loader_done;

#define ALIVE assert(!freed)

/* object_free_now: finalize (once), clear, free. Locals: s, alive. */
inline free_now() {
  atomic { at = object_free_now; ALIVE; s = ref_shared;
    if
    :: has_fin && !(s & FINALIZED) -> alive = true   /* the finalizer runs */
    :: else -> alive = false; freeing = true
    fi }
  if
  :: alive ->
    atomic { at = object_free_now; ALIVE; ref_local = UNOWNED }
    /* CAS loop: one (ref_shared) reference for the finalizer */
    atomic { at = object_free_now; ALIVE;
      ref_shared = (ref_shared | MERGED | FINALIZED) + ONE; refs++; nfin++; assert(nfin == 1) }
    if
    :: true -> /* the finalizer resurrects O: gy_store(&G, O) */
      atomic { at = gy_incref; ALIVE; ref_shared = ref_shared + ONE; refs++ } /* ref_local is UNOWNED */
      atomic { at = gy__object_mark_reachable; ALIVE; ref_shared = ref_shared | PUBLISHED }
      atomic { at = gy_store_steal; G = 1 } /* exchange: the old value was NULL */
    :: true -> skip
    fi;
    /* CAS loop: drop the finalizer's reference; a count left = resurrected */
    atomic { at = object_free_now; ALIVE; ref_shared = ref_shared - ONE; refs--;
      if
      :: CNT(ref_shared) != 0 -> skip
      :: else -> alive = false; freeing = true
      fi }
  :: else -> skip
  fi;
  if
  :: !alive ->
    atomic { at = type_clear; ALIVE }
    atomic { at = release_cell; ALIVE; assert(refs == 0 && CNT(ref_shared) == 0);
      freed = true; nfree++; ref_local = UNOWNED; ref_shared = DEAD }
  :: else -> skip /* resurrected */
  fi
}

/* decref_shared (CAS loop: one RMW), then what it decided. Locals: s, alive, dealloc. */
inline decref_shared_() {
  atomic { at = decref_shared; ALIVE; s = ref_shared - ONE; dealloc = false;
    if
    :: ref_shared & MERGED -> dealloc = (CNT(s) == 0 && !(ref_shared & QUEUED))
    :: !(ref_shared & MERGED) && CNT(s) < 0 && !(ref_shared & QUEUED) ->
      s = s | QUEUED; assert(false) /* no hand-off here: all other counts are in ref_shared */
    :: else -> skip
    fi;
    ref_shared = s; refs-- }
  if
  :: dealloc -> free_now()
  :: else -> skip
  fi
}

/* gy__try_incref on a non-owner thread (CAS loop: one RMW); the cell may be
 * dead but is not reused. Local: ok. */
inline try_incref_() {
  atomic { at = gy__try_incref;
    if
    /* MUTANT (gy__try_incref): refuses only DOOMED, not MERGED with count 0. */
    :: (ref_shared & DOOMED) -> ok = false
    :: else -> ALIVE; assert(!freeing); ref_shared = ref_shared + ONE; refs++; ok = true
    fi }
}

proctype Owner() {
  int s; bool alive, dealloc;
  /* gy_ref_clear(&F): exchange; F's reference is now the owner's */
  atomic { at = gy_store_steal; F = 0 }
  /* gy_decref: is_owner, ref_local 1 -> 0 (owner-only load + store) */
  atomic { at = gy_decref; ALIVE; assert(ref_local == 1); ref_local = 0; refs-- }
  /* free_simple: ref_shared != 0 (PUBLISHED), so the general path */
  atomic { at = free_simple; ALIVE; assert(ref_shared != 0) }
  /* merge_zero_local */
  atomic { at = merge_zero_local; ALIVE; s = ref_shared }
  if
  :: s == 0 -> free_now() /* private: nothing can reach it */
  :: else ->
    atomic { at = merge_zero_local; ALIVE; ref_local = UNOWNED }
    /* CAS loop: s -> s|MERGED */
    atomic { at = merge_zero_local; ALIVE; ref_shared = ref_shared | MERGED;
      dealloc = (CNT(ref_shared) == 0 && !(ref_shared & QUEUED)) }
    if
    :: dealloc -> free_now()
    :: else -> skip /* another thread holds a reference: its decref frees */
    fi
  fi;
  /* If the finalizer resurrected O into G: gy_ref_clear(&G) */
  if
  :: atomic { G == 1 -> at = gy_store_steal; G = 0 }
    /* gy_decref: is_owner, but ref_local is UNOWNED: decref_shared */
    atomic { at = gy_decref; ALIVE; assert(ref_local == UNOWNED) }
    decref_shared_()
  :: atomic { loader_done && G == 0 -> skip }
  fi;
  owner_done = true
}

proctype Loader() {
  int s; bool alive, dealloc, ok, got, field, p;
  if
  :: field = 0 /* gy_load(&F) */
  :: field = 1 /* gy_load(&G) */
  fi;
  do
  :: atomic { at = gy_load; p = (field == 0 -> F : G) }
    if
    :: p == 0 -> got = false; break
    :: else ->
      try_incref_();
      atomic { at = gy_load; p = (field == 0 -> F : G) } /* re-read the field */
      if
      :: ok && p == 1 -> got = true; break
      :: ok && p == 0 -> decref_shared_() /* changed: undo, retry */
      :: !ok -> assert(p == 0) /* refused while still in the field: only DOOMED may */
      fi
    fi
  od;
  if
  :: got -> atomic { at = use; ALIVE } decref_shared_()
  :: else -> skip
  fi;
  loader_done = true
}

/* The invariant, checked in every reachable state. */
active proctype monitor() {
  assert(refs == OWNED(ref_local) + CNT(ref_shared))
}

active proctype end_check() {
  atomic { owner_done && loader_done ->
    assert(freed && nfree == 1 && refs == 0 && F == 0 && G == 0) }
}

init {
  atomic {
    if
    :: has_fin = 1
    :: has_fin = 0
    fi;
    run Owner();
    run Loader()
  }
}
