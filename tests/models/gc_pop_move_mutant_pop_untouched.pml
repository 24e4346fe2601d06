/* spin: -O0 -DSAFETY -m100000 -w20 */
/*
 * MUTANT: gy_list_pop moves the slot's reference to the hand without touching it.
 * gc_pop_move.pml: a reference moves between holders without a count change
 * while the collector marks over live fields (collector/DESIGN.md section 9,
 * races R2 and R3).
 *
 * Heap: holders H1 and H2, held by the global slots G1 and G2 (counted); X,
 * a self-cycle (X.f = X) held by H1 (H1.f = X). Every count is in one shared
 * half here (gc_validate.pml has the torn read of the two halves).
 * M (a loop) pops X out of H1 (gy_list_pop, under the list's lock: read the
 * slot, touch the value, then empty the slot: no count change), then either
 * keeps it in hand, stores it into H2 (the touch of the new value, then the
 * exchange), or drops it (the touch, the decrement: X becomes a garbage
 * self-cycle), and goes quiescent.
 * The collector: watch, handshake, candidates, update, subtract (each field
 * read once), mark over live fields (read again, later), seal, publish,
 * clear; the mark may read H1 after the pop and H2 before the store, so X's
 * only outside reference is never seen by a scan: only the touch saves it.
 *
 * One handshake: W1's second one only orders more; gc_borrowed.pml models it.
 * Each atomic block is one atomic access of the C code (`at` names the C
 * function). Sequentially consistent memory; cells are not reused.
 * Checked: every object freed is unreachable from every root (G1, G2, M's
 * hand) when it is freed; the doomed set is unreachable at its publication
 * and each member when it is cleared; no access to a freed object.
 */

#define H1   0
#define H2   1
#define X    2
#define NONE 3

mtype = { gy_list_pop, gy_list_append, gy__gc_touch, gy_decref, gy_quiescent_begin,
          gy_safepoint, gc_phase_watch, gc_handshake, cm_candidates, cm_update, cm_subtract,
          cm_mark, cm_seal, cm_publish, cm_clear, gc_phase_idle };
hidden mtype at;

byte f[4];            /* each object's reference field (f[NONE] = NONE) */
short rc[3];          /* counts */
bit  touched[3], sealed[3], freed[3];
byte G1 = H1, G2 = H2;
byte hand = NONE;     /* M's reference (counted: the one the slot held) */

bit  phase = 0, seen = 0, quiet = 0, published = 0;
bit  cand[3], reach[3], trash[3];
short refs[3];

#define REACHES(r, x) ((r) == (x) || f[r] == (x) || f[f[r]] == (x))
#define UNREACHABLE(x) (!REACHES(G1, x) && !REACHES(G2, x) && !REACHES(hand, x))

inline cascade(c, nx) {
  do
  :: c != NONE && rc[c] == 0 ->
     assert(!freed[c]); assert(UNREACHABLE(c));
     freed[c] = 1; nx = f[c]; f[c] = NONE;
     if
     :: nx != NONE && nx != c -> assert(!freed[nx]); rc[nx]--; c = nx
     :: else -> c = NONE
     fi
  :: else -> break
  od
}

/* gy__gc_touch with the thread's answered phase. */
inline touch(x) {
  atomic { at = gy__gc_touch; assert(!freed[x]); if :: seen -> touched[x] = 1 :: else fi }
}

proctype M() {
  byte c, nx, peek;
  atomic { at = gy_safepoint; seen = phase }
  atomic { at = gy_list_pop; peek = f[H1] }                /* read the slot (the list's lock held) */
  skip /* MUTANT (gy_list_pop): the popped value is not touched */
  atomic { at = gy_list_pop; hand = f[H1]; f[H1] = NONE; assert(hand == peek) } /* it moves to the hand */
  atomic { at = gy_safepoint; seen = phase }
  if
  :: skip                                                   /* keep it in hand */
  :: touch(hand);                                           /* gy_list_append(H2, hand): the new value */
     atomic { at = gy_list_append; assert(!freed[H2]); f[H2] = hand; hand = NONE }
  :: touch(hand);                                           /* gy_decref(hand) */
     atomic { at = gy_decref; rc[hand]--; c = hand; hand = NONE; cascade(c, nx) }
  fi;
  atomic { at = gy_safepoint; seen = phase }
  atomic { at = gy_quiescent_begin; quiet = 1 }
}

proctype Collector() {
  byte i, t, c, nx;
  bit abort = 0;
  atomic { at = gc_phase_watch; phase = 1 }
  atomic { at = gc_handshake; seen || quiet }
  for (i : 0 .. 2) { atomic { at = cm_candidates; cand[i] = !freed[i] && !touched[i] } }
  for (i : 0 .. 2) { if :: cand[i] -> atomic { at = cm_update; refs[i] = rc[i] } :: else fi }
  for (i : 0 .. 2) {
    if
    :: cand[i] -> atomic { at = cm_subtract; t = f[i]; if :: t != NONE && cand[t] -> refs[t]-- :: else fi }
    :: else
    fi
  }
  for (i : 0 .. 2) { atomic { at = cm_mark; reach[i] = cand[i] && (refs[i] > 0 || touched[i]) } }
  for (c : 0 .. 2) {
    for (i : 0 .. 2) {
      if
      :: reach[i] -> atomic { at = cm_mark; t = f[i]; if :: t != NONE && cand[t] -> reach[t] = 1 :: else fi }
      :: else
      fi
    }
  }
  for (i : 0 .. 2) { trash[i] = cand[i] && !reach[i] }
  for (i : 0 .. 2) {
    if
    :: trash[i] -> atomic { at = cm_seal; if :: touched[i] -> abort = 1 :: else -> sealed[i] = 1 fi }
    :: else
    fi
  }
  if
  :: !abort && (trash[H1] || trash[H2] || trash[X]) ->
     atomic { at = cm_publish; published = 1;
       assert(!trash[H1] || UNREACHABLE(H1)); assert(!trash[H2] || UNREACHABLE(H2));
       assert(!trash[X] || UNREACHABLE(X)) }
     for (i : 0 .. 2) {
       if
       :: trash[i] ->
          atomic { at = cm_clear; assert(UNREACHABLE(i));
            if
            :: !freed[i] && f[i] != NONE -> c = f[i]; f[i] = NONE; rc[c]--; cascade(c, nx)
            :: else
            fi }
       :: else
       fi
     }
  :: else
  fi;
  atomic { at = gc_phase_idle; phase = 0 }
}

init {
  atomic {
    f[H1] = X; f[H2] = NONE; f[X] = X; f[NONE] = NONE;
    rc[H1] = 1; rc[H2] = 1; rc[X] = 2;  /* G1; G2; H1 and itself */
    run M(); run Collector()
  }
}
