/* spin: -O0 -DSAFETY -m100000 -w20 */
/*
 * gc_validate.pml: concurrent trial deletion with validation
 * (collector/DESIGN.md section 9, "the concurrent protocol"): the collector
 * reads counts and traverses while two mutators drop, upgrade and use
 * references, then validates its candidate garbage (the touched test and the
 * seal), publishes the doom under the doom lock and clears the set.
 *
 * Heap: a cycle A <-> B (A.f = B, B.f = A; each reference counted in the
 * shared half of its target's biased count) held from outside by the global
 * slot G (counted in A's owner half: M0 owns both objects).
 * M0 (a loop): at a moment of its choosing drops G (gy_store(&G, NULL): read the old
 * value and touch it, then the exchange and the owner's decrement), then idles
 * for ever (quiescent).
 * M1 (a plain worker): starts quiescent, leaves quiescence at a moment of
 * its choosing (gy_quiescent_end: state, then the pending handshake), may
 * gy_load G or upgrade the weak reference Wk to A (read; touch; the doom
 * check when the touch found the object sealed; try-incref; gy_load then
 * re-reads G and undoes its increment if G changed), then keeps or drops
 * what it got, and goes quiescent.
 * The collector: phase WATCH, the handshake (a quiescent thread counts as
 * acknowledged), the candidate walk (untouched live objects), update (the
 * two halves read separately), subtract and mark over live fields, the seal
 * (one RMW per trash member: touched -> abort), the publication under the
 * doom lock, and the clears, whose refcount cascade frees the set.
 *
 * One handshake: W1's second one only orders more; gc_borrowed.pml models it.
 * Each atomic block is one atomic access of the C code (`at` names the C
 * function); the count protocol itself (a decrement that frees at zero, a
 * try-incref that fails on a dead or doomed object) is one step here, as its
 * own models prove it. Sequentially consistent memory. Cells are not reused
 * (the collection holds them: DESIGN.md 9.6).
 *
 * Checked: no access to a freed object; every object freed (by refcount or
 * by the collector) is unreachable from every root (G, M0's reference in
 * transit, M1's reference) when it is freed; at the publication, every
 * member of the doomed set is unreachable (the named instant of the safety
 * argument), and so is each member when it is cleared; nothing is freed
 * twice; a touch that is not an upgrade never finds a doomed object.
 */

#define A    0
#define B    1
#define NONE 2  /* the empty slot; f[NONE] = NONE keeps the reachability check total */

mtype = { gy_store, gy__gc_touch, gy_decref, decref_shared, gy_load, gy__try_incref,
          gy__gc_doom_check, gy_weakref_get, doom_lock, doom_unlock, gy_quiescent_begin, gy_quiescent_end,
          gy_safepoint, gc_phase_watch, gc_handshake, cm_candidates, cm_update, cm_subtract,
          cm_mark, cm_seal, cm_publish, cm_clear, gc_phase_idle };
hidden mtype at;

byte f[3];            /* each object's reference field */
byte loc[2];          /* owner half of the count (M0 owns A and B) */
short sh[2];          /* shared half */
bit  touched[2];      /* the word's TOUCHED tag == this collection's */
bit  sealed[2];       /* the word's SEALED bit */
bit  freed[2];

byte G = A;           /* a global gy_ref slot */
byte Wk = A;          /* a weak reference to A (not counted; not a root) */
byte t0 = NONE;       /* M0's reference between the exchange and the decrement */
byte held1 = NONE;    /* M1's counted reference */

bit  phase = 0;       /* the collector's published phase: 1 = WATCH */
bit  seen[2];         /* each mutator's answered phase */
bit  quiet[2];        /* quiescent (one state word with seen in the C code) */
bit  lock = 0;        /* the doom lock */
bit  published = 0;   /* the set's doom */
bit  late = 0;        /* an upgrade found a sealed member before the publication */

/* the collector's own */
bit  cand[2], reach[2], trash[2];
short refs[2];

/* x reachable from root r through at most two fields (two objects). */
#define REACHES(r, x) ((r) == (x) || f[r] == (x) || f[f[r]] == (x))
#define UNREACHABLE(x) (!REACHES(G, x) && !REACHES(t0, x) && !REACHES(held1, x))

/* The refcount path frees c when its count reaches zero, then drops its
 * field, which may free the other: the cascade of object_free_now. */
inline cascade(c, nx) {
  do
  :: c != NONE && loc[c] + sh[c] == 0 ->
     assert(!freed[c]); assert(UNREACHABLE(c));
     freed[c] = 1; nx = f[c]; f[c] = NONE;
     if
     :: nx != NONE -> assert(!freed[nx]); sh[nx]--; c = nx
     :: else -> c = NONE
     fi
  :: else -> break
  od
}

/* gy__gc_touch: the barrier. With the thread's answered phase WATCH, one
 * RMW on the word sets TOUCHED and returns whether SEALED was set. An
 * upgrade may touch a dead cell (gy_load read it inside its epoch section,
 * so the cell and its word are still there); every other touch asserts
 * that its object is alive. */
inline touch(m, x, was_sealed) {
  atomic { at = gy__gc_touch;
    was_sealed = 0;
    if
    :: seen[m] -> was_sealed = sealed[x]; touched[x] = 1
    :: else
    fi }
}

proctype M0() {
  byte c, nx;
  bit s;
  atomic { at = gy_safepoint; seen[0] = phase }
  atomic { at = gy_store; t0 = G }        /* read the old value */
  assert(!freed[t0]); touch(0, t0, s);    /* touch it before removing it */
  atomic { at = gy_store; G = NONE }      /* the exchange (M0 is G's only writer) */
  assert(!(s && published)); /* no thread touches a doomed object except through an upgrade */
  atomic { at = gy_decref; assert(!freed[t0]); loc[t0]--; c = t0; t0 = NONE; cascade(c, nx) }
  atomic { at = gy_safepoint; seen[0] = phase }
  atomic { at = gy_quiescent_begin; quiet[0] = 1 }
}

proctype M1() {
  byte x = NONE, c, nx;
  bit s, fromG = 0;
  atomic { at = gy_quiescent_end; quiet[1] = 0 }
  atomic { at = gy_quiescent_end; seen[1] = phase }  /* answer before touching */
  if
  :: atomic { at = gy_load; x = G; fromG = 1 }  /* gy_load(&G): read the field */
  :: atomic { at = gy_weakref_get; x = Wk }     /* or gy_weakref_get(Wk): read the target */
  :: skip
  fi;
  if
  :: x != NONE ->                                /* the upgrade: touch, doom check, try-incref */
     touch(1, x, s);
     if
     :: s -> /* gy__gc_doom_check: the slow path of an upgrade of a sealed object */
        atomic { lock == 0 -> at = doom_lock; lock = 1 }
        atomic { at = gy__gc_doom_check;
          if
          :: published && trash[x] -> x = NONE   /* doomed: the upgrade fails */
          :: else -> skip
          fi }
        if
        :: x != NONE -> atomic { at = gy__gc_doom_check; late = 1 }
        :: else
        fi;
        atomic { at = doom_unlock; lock = 0 }
     :: else
     fi;
     if
     :: x != NONE ->
        atomic { at = gy__try_incref;
          if
          :: !freed[x] && loc[x] + sh[x] > 0 -> sh[x]++; held1 = x
          :: else -> skip
          fi }
     :: else
     fi;
     if
     :: fromG && held1 != NONE ->                /* gy_load re-reads the field; undo if it changed */
        atomic { at = gy_load; s = (G != held1) }
        if
        :: s ->
           touch(1, held1, s);
           atomic { at = decref_shared; assert(!freed[held1]); sh[held1]--; c = held1; held1 = NONE;
             cascade(c, nx) }
        :: else
        fi
     :: else
     fi
  :: else
  fi;
  atomic { at = gy_safepoint; seen[1] = phase }
  if
  :: held1 != NONE -> /* drop it: the touch, then the decrement */
     assert(!freed[held1]); touch(1, held1, s);
     assert(!(s && published));
     atomic { at = decref_shared; assert(!freed[held1]); sh[held1]--; c = held1; held1 = NONE;
       cascade(c, nx) }
  :: held1 != NONE -> skip /* keep it for ever: it must never be freed */
  :: else
  fi;
  atomic { at = gy_quiescent_begin; quiet[1] = 1 }
}

proctype Collector() {
  byte i, t, c, nx;
  bit abort = 0;
  atomic { at = gc_phase_watch; phase = 1 }
  /* gc_handshake: each thread answered, or is quiescent (one state word) */
  atomic { at = gc_handshake; seen[0] || quiet[0] }
  atomic { at = gc_handshake; seen[1] || quiet[1] }
  /* cm_candidates: live objects not touched since the watch began */
  for (i : 0 .. 1) {
    atomic { at = cm_candidates; cand[i] = !freed[i] && !touched[i] }
  }
  /* cm_update: the two halves of the count, read separately */
  for (i : 0 .. 1) {
    if
    :: cand[i] ->
       atomic { at = cm_update; refs[i] = loc[i] }
       atomic { at = cm_update; refs[i] = refs[i] + sh[i] }
    :: else
    fi
  }
  /* cm_subtract: each candidate's field, read once */
  for (i : 0 .. 1) {
    if
    :: cand[i] -> atomic { at = cm_subtract; t = f[i]; if :: t != NONE && cand[t] -> refs[t]-- :: else fi }
    :: else
    fi
  }
  /* cm_mark: roots (outside references, or touched), then the closure over
   * live fields (two passes reach a fixpoint with two objects) */
  for (i : 0 .. 1) {
    atomic { at = cm_mark; reach[i] = cand[i] && (refs[i] > 0 || touched[i]) }
  }
  for (c : 0 .. 1) {
    for (i : 0 .. 1) {
      if
      :: reach[i] -> atomic { at = cm_mark; t = f[i]; if :: t != NONE && cand[t] -> reach[t] = 1 :: else fi }
      :: else
      fi
    }
  }
  for (i : 0 .. 1) { trash[i] = cand[i] && !reach[i] }
  /* cm_seal: one RMW per member; a touched member aborts the set */
  for (i : 0 .. 1) {
    if
    :: trash[i] ->
       atomic { at = cm_seal;
         if
         :: touched[i] -> abort = 1
         :: else -> sealed[i] = 1
         fi }
    :: else
    fi
  }
  /* cm_publish: the doom of the whole set, one store under the doom lock */
  atomic { lock == 0 -> at = doom_lock; lock = 1 }
  atomic { at = cm_publish; if :: late -> abort = 1 :: else fi }
  if
  :: !abort && (trash[A] || trash[B]) ->
     atomic { at = cm_publish; published = 1;
       assert(!trash[A] || UNREACHABLE(A)); assert(!trash[B] || UNREACHABLE(B)) }
  :: else
  fi;
  atomic { at = doom_unlock; lock = 0 }
  /* cm_clear: each member's clear drops its field; the cascade frees */
  if
  :: published ->
     for (i : 0 .. 1) {
       if
       :: trash[i] ->
          atomic { at = cm_clear; assert(UNREACHABLE(i));
            if
            :: !freed[i] && f[i] != NONE -> c = f[i]; f[i] = NONE; sh[c]--; cascade(c, nx)
            :: else
            fi }
       :: else
       fi
     }
     assert(freed[A] && freed[B])
  :: else
  fi;
  atomic { at = gc_phase_idle; phase = 0 }
}

init {
  atomic {
    f[A] = B; f[B] = A; f[NONE] = NONE;
    loc[A] = 1; sh[A] = 1; sh[B] = 1;  /* A: G and B; B: A */
    quiet[1] = 1;
    run M0(); run M1(); run Collector()
  }
}
