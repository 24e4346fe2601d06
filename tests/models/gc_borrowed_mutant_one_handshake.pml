/* spin: -O0 -DSAFETY -m100000 -w20 */
/*
 * MUTANT: the collector reads counts after the first handshake, without the second.
 * gc_borrowed.pml: a borrowed pointer read before the watch, and another
 * thread's unbarriered change before it answered (collector/DESIGN.md 9.3,
 * rule W1': the second handshake). Found by the protocol's review.
 *
 * Heap: a holder H1 held by the global slot G1; X, a self-cycle (X.f = X)
 * held by H1 (H1.f = X). M1 (answered) reads X = H1.f as a borrowed pointer
 * (no touch, no count change: allowed until its next safe point while a
 * count keeps X alive, as in stop-the-world mode) and then takes a counted
 * reference (gy_incref: touch, +1) before its next safe point. M2 empties
 * H1.f (gy_store: read, touch, exchange, decrement), possibly before it
 * answered the watch, so without a touch: X becomes a garbage self-cycle
 * until M1's increment makes it reachable again.
 * The collector: watch, the first handshake, then the second one (every
 * thread passes one more safe point), candidates, update, subtract, mark,
 * seal, publish, clear. With one handshake only (the mutant) the collector
 * may read X's count between M2's unbarriered decrement and M1's increment,
 * which then lands after the seal without being an upgrade.
 *
 * Each atomic block is one atomic access of the C code (`at` names the C
 * function). Sequentially consistent memory; cells are not reused.
 * Checked: every object freed is unreachable from G1, M1's counted
 * reference and M2's reference in transit when it is freed; the published
 * set is unreachable at its publication; no access to a freed object.
 */

#define H1   0
#define X    1
#define NONE 2

mtype = { field_read, gy_store, gy__gc_touch, gy_decref, gy_incref, gy_safepoint,
          gy_quiescent_begin, gc_phase_watch, gc_handshake, cm_candidates, cm_update, cm_subtract,
          cm_mark, cm_seal, cm_publish, cm_clear, gc_phase_idle };
hidden mtype at;

byte f[3];
short rc[2];
bit  touched[2], sealed[2], freed[2];
byte G1 = H1;
byte b1 = NONE;       /* M1's borrowed pointer */
byte h1 = NONE;       /* M1's counted reference */
byte t2 = NONE;       /* M2's reference in transit */
byte phase = 0;       /* 0 idle; 1 and 2: the two handshakes of the watch */
byte seen[2];
bit  quiet[2];
bit  published = 0;
bit  cand[2], reach[2], trash[2];
short refs[2];

#define REACHES(r, x) ((r) == (x) || f[r] == (x) || f[f[r]] == (x))
#define UNREACHABLE(x) (!REACHES(G1, x) && !REACHES(h1, x) && !REACHES(t2, x))

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

inline touch(m, x) {
  atomic { at = gy__gc_touch; assert(!freed[x]); if :: seen[m] > 0 -> touched[x] = 1 :: else fi }
}

proctype M1() {
  atomic { at = gy_safepoint; seen[0] = phase }
  atomic { at = field_read; b1 = f[H1] }      /* borrowed: H1 is held through G1 */
  if
  :: b1 != NONE ->
     touch(0, b1);                            /* gy_incref(b1): touch, then +1 */
     atomic { at = gy_incref; assert(!freed[b1]); rc[b1]++; h1 = b1; b1 = NONE }
  :: else
  fi;
  atomic { at = gy_safepoint; seen[0] = phase }  /* the borrowed pointer is dead here */
  atomic { at = gy_quiescent_begin; quiet[0] = 1 }
}

proctype M2() {
  byte c, nx;
  if
  :: atomic { at = gy_safepoint; seen[1] = phase }  /* answers first, or not */
  :: skip
  fi;
  atomic { at = gy_store; t2 = f[H1] }
  touch(1, t2);
  atomic { at = gy_store; f[H1] = NONE }
  atomic { at = gy_decref; rc[t2]--; c = t2; t2 = NONE; cascade(c, nx) }
  atomic { at = gy_safepoint; seen[1] = phase }
  atomic { at = gy_quiescent_begin; quiet[1] = 1 }
}

proctype Collector() {
  byte i, t, c, nx;
  bit abort = 0;
  atomic { at = gc_phase_watch; phase = 1 }
  atomic { at = gc_handshake; seen[0] > 0 || quiet[0] }
  atomic { at = gc_handshake; seen[1] > 0 || quiet[1] }
  /* W1': the second handshake, after every thread answered the first */
  skip /* MUTANT (gc_handshake): one handshake only: counts are read once all answered */
  for (i : 0 .. 1) { atomic { at = cm_candidates; cand[i] = !freed[i] && !touched[i] } }
  for (i : 0 .. 1) { if :: cand[i] -> atomic { at = cm_update; refs[i] = rc[i] } :: else fi }
  for (i : 0 .. 1) {
    if
    :: cand[i] -> atomic { at = cm_subtract; t = f[i]; if :: t != NONE && cand[t] -> refs[t]-- :: else fi }
    :: else
    fi
  }
  for (i : 0 .. 1) { atomic { at = cm_mark; reach[i] = cand[i] && (refs[i] > 0 || touched[i]) } }
  for (c : 0 .. 1) {
    for (i : 0 .. 1) {
      if
      :: reach[i] -> atomic { at = cm_mark; t = f[i]; if :: t != NONE && cand[t] -> reach[t] = 1 :: else fi }
      :: else
      fi
    }
  }
  for (i : 0 .. 1) { trash[i] = cand[i] && !reach[i] }
  for (i : 0 .. 1) {
    if
    :: trash[i] -> atomic { at = cm_seal; if :: touched[i] -> abort = 1 :: else -> sealed[i] = 1 fi }
    :: else
    fi
  }
  if
  :: !abort && (trash[H1] || trash[X]) ->
     atomic { at = cm_publish; published = 1;
       assert(!trash[H1] || UNREACHABLE(H1)); assert(!trash[X] || UNREACHABLE(X)) }
     for (i : 0 .. 1) {
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
    f[H1] = X; f[X] = X; f[NONE] = NONE;
    rc[H1] = 1; rc[X] = 2;  /* G1; H1 and itself */
    run M1(); run M2(); run Collector()
  }
}
