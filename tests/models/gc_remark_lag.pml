/* spin: -O0 -DSAFETY -m100000 -w20 */
/*
 * gc_remark_lag.pml: the re-mark lag (collector/DESIGN.md 9.6 and 9.14).
 *
 * Heap: D and H, a cycle (H.f = D, D.f = H), garbage but for a weak
 * reference to H; the global slot G (empty). D comes first in the seal pass.
 * M (a loop, watching once it answers) upgrades the weak reference to H (a
 * try-incref: touch, D1), reads D from H (borrowed), takes a count on it
 * (touch, increment), clears H's edge to it (touch, then the slot), then
 * either stores D into G or drops it, and drops H.
 * The collector: watch, handshake, candidates, update, subtract, mark, the
 * seal pass in order D, H (a touched one is re-marked from its current
 * fields, SEALED removed from what that reaches), the scan of the sealed
 * set's words for a touch since the seal, the recount (Σ), the publication
 * under the doom lock (weak references detached with it), the clears.
 * The touch is one RMW that stamps TAG and returns SEALED; a toucher that
 * saw SEALED then takes the doom lock and sets `late` unless published (a
 * separate step: it may come after the collector's recount).
 *
 * Checked: every object freed is unreachable from every root (G, M's two
 * hands) when it is freed; the set is unreachable at its publication and
 * each member when it is cleared; no access to a freed object; and no
 * anomaly: a recount that refuses the set finds `late` set or a touched
 * member (an anomaly means a missing barrier, and this model has them all).
 * Each atomic block is one atomic access of the C code (`at` names the C
 * function). Sequentially consistent memory; cells are not reused.
 */

#define D    0
#define H    1
#define NONE 2

mtype = { gy_weakref_get, gy_list_get, gy_incref, gy_ref_clear, gy_store, gy_decref,
          gy__gc_touch, gy__gc_doom_check, gy_safepoint, gy_quiescent_begin, gc_phase_watch,
          gc_handshake, cm_candidates, cm_update, cm_subtract, cm_mark, cm_seal, cm_remark,
          cm_scan, cm_recount, cm_publish, cm_clear, gc_phase_idle };
hidden mtype at;

byte f[3];                 /* each object's reference field (f[NONE] = NONE) */
short rc[2];
bit  touched[2], sealed[2], freed[2];
byte G = NONE;
byte hand_h = NONE, hand_d = NONE;  /* M's counted references */
bit  wcleared = 0;         /* the weak reference to H is cleared */

bit  phase = 0, seen = 0, quiet = 0, published = 0, late = 0;
bit  cand[2], reach[2], trash[2];
short refs[2];

#define REACHES(r, x) ((r) == (x) || f[r] == (x) || f[f[r]] == (x))
#define UNREACHABLE(x) (!REACHES(G, x) && !REACHES(hand_h, x) && !REACHES(hand_d, x))

inline cascade(c, nx) {
  do
  :: c != NONE && rc[c] == 0 ->
     assert(!freed[c]); assert(UNREACHABLE(c));
     freed[c] = 1; nx = f[c]; f[c] = NONE;
     if :: c == H -> wcleared = 1 :: else fi;  /* its weak references cleared at its free */
     if
     :: nx != NONE && nx != c -> assert(!freed[nx]); rc[nx]--; c = nx
     :: else -> c = NONE
     fi
  :: else -> break
  od
}

/* gy__gc_touch (one RMW: TAG stamped, SEALED returned), then D1 for a
 * toucher that saw SEALED: late before the publication. */
inline touch(x, ws) {
  atomic { at = gy__gc_touch; assert(!freed[x]);
    if :: seen -> touched[x] = 1; ws = sealed[x] :: else -> ws = 0 fi }
  atomic { at = gy__gc_doom_check; if :: ws && !published -> late = 1 :: else fi }
}

proctype M() {
  byte d, c, nx;
  bit ws;
  atomic { at = gy_safepoint; seen = phase }
  /* gy_weakref_get(H): touch, D1, the try-incref */
  atomic { at = gy__gc_touch;
    if :: !wcleared -> assert(!freed[H]); if :: seen -> touched[H] = 1; ws = sealed[H] :: else -> ws = 0 fi
       :: else -> ws = 0 fi }
  atomic { at = gy_weakref_get;
    if
    :: !wcleared && !(ws && published) -> if :: ws -> late = 1 :: else fi; rc[H]++; hand_h = H
    :: else
    fi }
  if
  :: hand_h == H ->
     atomic { at = gy_list_get; d = f[H] }            /* borrowed: H holds it */
     if
     :: d != NONE ->
        touch(d, ws);
        atomic { at = gy_incref; rc[d]++; hand_d = d }
        touch(d, ws);                                 /* gy_ref_clear(&H->f): the removed value */
        atomic { at = gy_ref_clear; assert(f[H] == d); f[H] = NONE; rc[d]-- }
        atomic { at = gy_safepoint; seen = phase }
        if
        :: atomic { at = gy_store; G = hand_d; hand_d = NONE }  /* G takes the count (touched above) */
        :: touch(d, ws);
           atomic { at = gy_decref; c = hand_d; hand_d = NONE; rc[c]--; cascade(c, nx) }
        fi
     :: else
     fi;
     touch(H, ws);
     atomic { at = gy_decref; c = hand_h; hand_h = NONE; rc[c]--; cascade(c, nx) }
  :: else
  fi;
  atomic { at = gy_safepoint; seen = phase }
  atomic { at = gy_quiescent_begin; quiet = 1 }
}

proctype Collector() {
  byte i, t, c, nx;
  short k;
  bit abort = 0;
  atomic { at = gc_phase_watch; phase = 1 }
  atomic { at = gc_handshake; seen || quiet }
  for (i : 0 .. 1) { atomic { at = cm_candidates; cand[i] = !freed[i] && !touched[i] && rc[i] > 0 } }
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
  /* The seal pass, D first: the CAS fails on a touch; a touched one is
   * re-marked from its fields as they are now. */
  for (i : 0 .. 1) {
    if
    :: cand[i] && !reach[i] ->
       atomic { at = cm_seal; if :: touched[i] -> reach[i] = 1 :: else -> sealed[i] = 1 fi }
       if
       :: reach[i] ->
          t = i;
          for (c : 0 .. 1) {
            atomic { at = cm_remark; t = f[t];
              if :: t != NONE && cand[t] && !reach[t] -> reach[t] = 1; sealed[t] = 0 :: else -> t = NONE fi }
          }
       :: else
       fi
    :: else
    fi
  }
  for (i : 0 .. 1) { trash[i] = sealed[i] && !reach[i] }
  /* The scan: a member touched since its seal aborts the set (late). */
  for (i : 0 .. 1) { atomic { at = cm_scan; if :: trash[i] && touched[i] -> abort = 1 :: else fi } }
  /* Σ: counts minus references from members, read one access at a time. */
  if
  :: !abort && (trash[D] || trash[H]) ->
     for (i : 0 .. 1) {
       if
       :: trash[i] ->
          atomic { at = cm_recount; k = rc[i]; t = f[D]; if :: trash[D] && t == i -> k-- :: else fi }
          atomic { at = cm_recount; t = f[H]; if :: trash[H] && t == i -> k-- :: else fi }
          if
          :: k != 0 -> atomic { at = cm_recount; assert(late); abort = 1 }  /* never an anomaly */
          :: else
          fi
       :: else
       fi
     }
  :: else
  fi;
  if
  :: !abort && (trash[D] || trash[H]) ->
     atomic { at = cm_publish;
       if
       :: late -> abort = 1
       :: else -> published = 1; wcleared = 1;
          assert(!trash[D] || UNREACHABLE(D)); assert(!trash[H] || UNREACHABLE(H))
       fi }
     if
     :: !abort ->
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
     fi
  :: else
  fi;
  atomic { at = gc_phase_idle; phase = 0 }
}

init {
  atomic {
    f[H] = D; f[D] = H; f[NONE] = NONE;
    rc[D] = 1; rc[H] = 1;   /* each held by the other; the weak reference counts nothing */
    run M(); run Collector()
  }
}
