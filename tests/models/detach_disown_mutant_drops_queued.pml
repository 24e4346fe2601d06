/* spin: -O0 -DSAFETY -m100000 -w20 */
/* MUTANT of detach_disown.pml: disown_one clears QUEUED. */
/*
 * detach_disown.pml: the owner detaches (gy_thread_detach: heap_settle,
 * gy__refcount_disown_all -> disown_one, heap_settle, DETACHED, the orphan
 * hand-off) while a non-owner decrements, queues the object to the detaching
 * owner and drains orphans (core/src/refcount.c, core/src/runtime.c).
 *
 * Object O is owned by the Owner process and never published; three
 * references counted in ref_local: the Owner's and two handed to the
 * NonOwner. The Owner may drop its reference and drain its inbox (any safe
 * point), then detaches at a moment of its choosing; the references it still
 * holds then stay reachable for the NonOwner (say, in a shared structure)
 * and are dropped there. The NonOwner drops references (decref_shared), may
 * take one more (gy_incref) or hand one to the Owner while it is attached;
 * a decrement below zero sets QUEUED and hands O to the Owner
 * (gy__refcount_flush_outbox: push, then the DETACHED check, seq_cst in the C
 * code: sequentially consistent here), and orphaned work is drained by the
 * NonOwner (gy__runtime_drain_orphans -> merge_queued on a non-owner).
 *
 * Steps as in queued_merge.pml (one atomic access each; a CAS loop is one
 * RMW; merge_queued stores ref_local = UNOWNED before its CAS, see there).
 * gy__heap_foreach_object visits O while its header is live; a freed cell
 * keeps the dead header (ref_local UNOWNED), which disown_one skips.
 *
 * Checked: no access after free; freed exactly once; finalizer at most once;
 * the inbox holds O at most once and never after it was freed; every queued
 * entry is consumed (nothing left in the detached heap's inbox); ghost
 * references == ref_local (if owned) + count(ref_shared) + transit, always.
 */

#define QUEUED     1
#define MERGED     2
#define PUBLISHED  4
#define ID_TAKEN   8
#define FINALIZED 16
#define WEAKREFS  32
#define DOOMED    64
#define FLAGS    127
#define SHIFT      7
#define ONE      128
#define DEAD  MERGED
#define UNOWNED  255
#define CNT(w)   ((w) >> SHIFT)
#define OWNED(l) ((l) == UNOWNED -> 0 : (l))

mtype = { gy_decref, gy_incref, free_simple, merge_zero_local, object_free_now, type_clear,
          release_cell, decref_shared, outbox_push, gy__refcount_flush_outbox,
          gy__refcount_drain_inbox, merge_queued, disown_one, gy_thread_detach,
          gy__runtime_drain_orphans };
hidden mtype at;

int  ref_shared = 0;
byte ref_local = 3;     /* the Owner's reference and the NonOwner's two */
byte inbox = 0;         /* O's entries in the Owner's inbox */
bit  detached = 0;      /* the Owner's heap state is DETACHED */
bit  orphan = 0;        /* the NonOwner's GY__PEND_ORPHAN */

/* ghosts */
byte refs = 3;
byte owner_holds = 1, nonowner_holds = 2;
byte transit = 0;       /* taken out of ref_local, not yet in ref_shared */
bit  has_fin, freeing, freed;
byte nfin, nfree;
bit  owner_done, nonowner_done;
bit  detaching;          /* the Owner is inside gy_thread_detach */

#define ALIVE assert(!freed)

/* object_free_now (the finalizer does not resurrect here). Locals: s, alive. */
inline free_now() {
  atomic { at = object_free_now; ALIVE; s = ref_shared;
    if
    :: has_fin && !(s & FINALIZED) -> alive = true
    :: else -> alive = false; freeing = true
    fi }
  if
  :: alive ->
    atomic { at = object_free_now; ALIVE; ref_local = UNOWNED }
    atomic { at = object_free_now; ALIVE; /* CAS loop: the finalizer's reference */
      ref_shared = (ref_shared | MERGED | FINALIZED) + ONE; refs++; nfin++; assert(nfin == 1) }
    atomic { at = object_free_now; ALIVE; /* CAS loop: drop it */
      ref_shared = ref_shared - ONE; refs--; assert(CNT(ref_shared) == 0); freeing = true }
  :: else -> skip
  fi;
  atomic { at = type_clear; ALIVE }
  atomic { at = release_cell; ALIVE; assert(refs == 0 && CNT(ref_shared) == 0 && !(ref_shared & QUEUED));
    freed = true; nfree++; ref_local = UNOWNED; ref_shared = DEAD }
}

/* decref_shared (CAS loop: one RMW), then the free; `holds`: the ghost count
 * of references its thread holds. Locals: s, dealloc, queue, alive. */
inline decref_shared_(holds) {
  atomic { at = decref_shared; ALIVE; s = ref_shared - ONE; dealloc = false; queue = false; holds--;
    if
    :: ref_shared & MERGED -> dealloc = (CNT(s) == 0 && !(ref_shared & QUEUED))
    :: !(ref_shared & MERGED) && CNT(s) < 0 && !(ref_shared & QUEUED) -> s = s | QUEUED; queue = true
    :: else -> skip
    fi;
    ref_shared = s; refs-- }
  if
  :: dealloc -> free_now()
  :: else -> skip
  fi
}

/* One inbox entry taken (by the owner's drain or an orphan drain): merge_queued. */
inline merge_queued_() {
  atomic { at = merge_queued; ALIVE; l = ref_local; ref_local = UNOWNED; transit = OWNED(l) }
  atomic { at = merge_queued; ALIVE; /* CAS loop */
    if
    :: ref_shared & MERGED -> ref_shared = ref_shared & ~QUEUED; dealloc = (CNT(ref_shared) == 0)
    :: else ->
      s = CNT(ref_shared) + OWNED(l);
      ref_shared = (s << SHIFT) | ((ref_shared & FLAGS & ~QUEUED) | MERGED);
      dealloc = (s == 0)
    fi;
    transit = 0 }
  if
  :: dealloc -> free_now()
  :: else -> skip
  fi
}

proctype Owner() {
  int s; byte l; bool alive, dealloc, queue, zero;
  do
  :: owner_holds > 0 -> /* gy_decref of a reference the Owner holds */
    atomic { at = gy_decref; ALIVE; zero = false; queue = false;
      if
      :: ref_local == UNOWNED -> queue = true /* merged: decref_shared */
      :: ref_local != UNOWNED && ref_local > 1 -> ref_local--; refs--; owner_holds--
      :: ref_local == 1 -> ref_local = 0; refs--; owner_holds--; zero = true
      :: ref_local == 0 -> assert(false)
      fi }
    if
    :: queue -> decref_shared_(owner_holds)
    :: zero ->
      atomic { at = free_simple; ALIVE; s = ref_shared }
      if
      :: s == 0 && !has_fin ->
        atomic { at = release_cell; ALIVE; assert(refs == 0 && ref_shared == 0);
          freed = true; nfree++; ref_local = UNOWNED; ref_shared = DEAD }
      :: else ->
        atomic { at = merge_zero_local; ALIVE; s = ref_shared }
        if
        :: s == 0 -> free_now()
        :: else ->
          atomic { at = merge_zero_local; ALIVE; ref_local = UNOWNED }
          atomic { at = merge_zero_local; ALIVE; ref_shared = ref_shared | MERGED; /* CAS loop */
            dealloc = (CNT(ref_shared) == 0 && !(ref_shared & QUEUED)) }
          if
          :: dealloc -> free_now()
          :: else -> skip
          fi
        fi
      fi
    :: else -> skip
    fi
  :: inbox > 0 -> /* a safe point */
    atomic { at = gy__refcount_drain_inbox; ALIVE; inbox-- }
    merge_queued_()
  :: atomic { at = gy_thread_detach; detaching = 1 } break
  od;
  /* heap_settle */
  if
  :: atomic { inbox > 0 -> at = gy__refcount_drain_inbox; ALIVE; inbox-- } merge_queued_()
  :: atomic { inbox == 0 -> at = gy__refcount_drain_inbox }
  fi;
  /* what the Owner still holds is dropped by the NonOwner later */
  atomic { nonowner_holds = nonowner_holds + owner_holds; owner_holds = 0 }
  /* gy__refcount_disown_all -> disown_one, if the header is live */
  atomic { at = disown_one; l = ref_local;
    if
    :: l == UNOWNED -> skip /* merged already, or a dead cell */
    :: else -> ALIVE; ref_local = UNOWNED; transit = l
    fi }
  if
  :: l != UNOWNED ->
    atomic { at = disown_one; ALIVE; /* CAS loop: add the local count, mark MERGED */
      /* MUTANT (disown_one): clears QUEUED, so a non-owner may free O while
       * its entry is still on the way to (or in) the detaching heap's inbox. */
      ref_shared = ((ref_shared + l * ONE) | MERGED) & ~QUEUED; transit = 0 }
  :: else -> skip
  fi;
  /* heap_settle */
  if
  :: atomic { inbox > 0 -> at = gy__refcount_drain_inbox; ALIVE; inbox-- } merge_queued_()
  :: atomic { inbox == 0 -> at = gy__refcount_drain_inbox }
  fi;
  atomic { at = gy_thread_detach; detached = 1 }
  /* seq_cst fence; work pushed since goes to another attached thread */
  atomic { at = gy_thread_detach; if :: inbox > 0 -> orphan = 1 :: else -> skip fi }
  owner_done = true
}

proctype NonOwner() {
  int s; byte l; bool alive, dealloc, queue, pending, dup = 1; byte give = 2;
  do
  :: nonowner_holds > 0 ->
    decref_shared_(nonowner_holds);
    if
    :: queue -> atomic { at = outbox_push; assert(!pending); pending = true }
    :: else -> skip
    fi
  :: nonowner_holds > 0 && dup -> /* gy_incref on a non-owner thread */
    atomic { at = gy_incref; ALIVE; ref_shared = ref_shared + ONE; refs++; nonowner_holds++ }
    dup = false
  :: atomic { nonowner_holds > 0 && give > 0 && !detaching ->
      /* hand a reference to the Owner before it detaches (no count changes) */
      nonowner_holds--; owner_holds++; give-- }
  :: pending -> /* gy__refcount_flush_outbox: push, seq_cst fence, DETACHED? */
    atomic { at = gy__refcount_flush_outbox; ALIVE; inbox++; assert(inbox == 1) }
    atomic { at = gy__refcount_flush_outbox; if :: detached -> orphan = 1 :: else -> skip fi }
    pending = false
  :: orphan -> /* a safe point with GY__PEND_ORPHAN: gy__runtime_drain_orphans */
    atomic { at = gy__runtime_drain_orphans; orphan = 0; assert(detached) }
    if
    :: atomic { inbox > 0 -> at = gy__runtime_drain_orphans; ALIVE; inbox-- } merge_queued_()
    :: atomic { inbox == 0 -> at = gy__runtime_drain_orphans }
    fi
  :: nonowner_holds == 0 && !pending && !orphan && owner_done -> break
  od;
  nonowner_done = true
}

active proctype monitor() {
  assert(refs == OWNED(ref_local) + CNT(ref_shared) + transit)
}

active proctype end_check() {
  atomic { owner_done && nonowner_done ->
    assert(freed && nfree == 1 && refs == 0 && inbox == 0 && owner_holds == 0) }
}

init {
  atomic {
    if
    :: has_fin = 1
    :: has_fin = 0
    fi;
    run Owner();
    run NonOwner()
  }
}
