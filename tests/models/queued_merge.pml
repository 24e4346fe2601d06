/* spin: -O0 -DSAFETY -m100000 -w20 */
/*
 * queued_merge.pml: a non-owner's decrements race the owner's own decrement
 * and its merge of the queued object (core/src/refcount.c: the QUEUED and
 * MERGED hand-off of core/DESIGN.md section 3).
 *
 * Object O is owned by the Owner process and never published. Three
 * references, all counted in ref_local: one the Owner's, two handed to the
 * NonOwner. The NonOwner drops its references (decref_shared), may take one
 * more first (gy_incref: counted in ref_shared), and when a decrement takes
 * the shared count below zero it sets QUEUED and hands O to the Owner's inbox
 * (outbox_push, then the flush at a later safe point). The Owner drops its
 * reference (gy_decref -> free_simple -> merge_zero_local) and, at any safe
 * point, drains its inbox (merge_queued). Whoever takes the merged count to
 * zero frees O (object_free_now, with or without a finalizer).
 *
 * Each atomic block is one atomic access of the C code (`at` names the C
 * function); a CAS loop whose body has no side effect is one read-modify-write.
 * The owner's relaxed load and store of ref_local are one step: no other
 * thread writes ref_local of an object it does not own while it is owned.
 * Sequentially consistent memory; the cell is never reused.
 *
 * merge_queued stores ref_local = UNOWNED before its CAS (core/DESIGN.md
 * section 3a, T8); the old order, the store after the CAS, is
 * queued_merge_mutant_unowned_after_cas.pml, which spin refutes.
 *
 * Checked: no access after free; freed exactly once, by the thread that takes
 * the count to zero; finalizer at most once; the inbox holds O at most once
 * and never after it was freed; ghost references held == ref_local (if owned)
 * + count(ref_shared) + the count the owner has taken out of ref_local and
 * not yet added to ref_shared (`transit`), in every state.
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
          gy__refcount_drain_inbox, merge_queued };
hidden mtype at;

int  ref_shared = 0;
byte ref_local = 3;     /* the Owner's reference and the NonOwner's two */
byte inbox = 0;         /* O's entries in the Owner's inbox */

/* ghosts */
byte refs = 3;
byte owner_holds = 1, nonowner_holds = 2; /* who holds the references */
byte transit = 0;       /* taken out of ref_local, not yet in ref_shared */
bit  has_fin, freeing, freed;
byte nfin, nfree;
bit  owner_done, nonowner_done;

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

/* decref_shared (CAS loop: one RMW), then the free or the hand-off; `holds`:
 * the ghost count of references its thread holds. Locals: s, dealloc, queue, alive. */
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
      /* free_simple: the shared word decides (no finalizer, depth 0) */
      atomic { at = free_simple; ALIVE; s = ref_shared }
      if
      :: s == 0 && !has_fin ->
        atomic { at = release_cell; ALIVE; assert(refs == 0 && ref_shared == 0);
          freed = true; nfree++; ref_local = UNOWNED; ref_shared = DEAD }
      :: else -> /* merge_zero_local */
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
  :: inbox > 0 -> /* a safe point: the inbox holds O */
    atomic { at = gy__refcount_drain_inbox; ALIVE; inbox-- }
    /* merge_queued */
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
  :: owner_holds == 0 && inbox == 0 && nonowner_done -> break
  od;
  owner_done = true
}

proctype NonOwner() {
  int s; bool alive, dealloc, queue, pending, dup = 1; byte give = 2;
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
  :: nonowner_holds > 0 && give > 0 -> /* hand a reference to the Owner (no count changes) */
    atomic { nonowner_holds--; owner_holds++; give-- }
  :: pending -> /* the outbox reaches the owner's inbox */
    atomic { at = gy__refcount_flush_outbox; ALIVE; inbox++; assert(inbox == 1) }
    pending = false
  :: nonowner_holds == 0 && !pending -> break
  od;
  nonowner_done = true
}

active proctype monitor() {
  assert(refs == OWNED(ref_local) + CNT(ref_shared) + transit)
}

active proctype end_check() {
  atomic { owner_done && nonowner_done -> assert(freed && nfree == 1 && refs == 0 && inbox == 0) }
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
