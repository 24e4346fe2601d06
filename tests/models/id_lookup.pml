/* spin: -O0 -DSAFETY -m100000 -w20 */
/*
 * id_lookup.pml: gy_object_from_id races the death of the object the id
 * names and the reuse of its cell by a new object (core/src/object.c,
 * core/src/refcount.c release_cell, core/src/arena.c; core/DESIGN.md
 * sections 2 and 5).
 *
 * One cell. First it holds O1 (generation 1), owned by the Owner, which holds
 * its one reference; O1's id was taken (ID_TAKEN; the id's serial is 0). The
 * Owner drops O1 (gy_decref -> free_simple -> merge_zero_local -> the CAS ->
 * object_free_now -> release_cell: the serial moves on, then the dead header).
 * Once the grace period allows (the Lookup thread is not inside an epoch
 * section that was open at the free), the Owner may reuse the cell for O2
 * (generation 2: gy__cell_init_object, local 1 then shared 0) and drop it
 * too (free_simple's fast path: the cell is reused at once). The Lookup
 * thread, at any moment, looks the id up (inside its epoch section, with the
 * segment kept by seg_lock): gy__object_is_live (two loads), the serial
 * check, gy__try_incref, the serial re-check; on success it uses what it got
 * and drops it (which may free O1 on its thread), otherwise it undoes.
 *
 * Each atomic block is one atomic access of the C code (`at` names the C
 * function); a CAS loop is one read-modify-write. Sequentially consistent.
 *
 * Checked: a lookup that succeeds returns the object the id names (generation
 * 1), alive, and never an object being freed; no access after free (reads of
 * a dead or reused header by is_live and try-incref are allowed: the segment
 * is kept); each object freed once; ghost references of the cell's current
 * object == ref_local (if owned) + count(ref_shared), always.
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

mtype = { gy_decref, free_simple, merge_zero_local, object_free_now, type_clear, release_cell,
          gy__arena_free_cell, gy__cell_init_object, decref_shared, gy_object_from_id,
          gy__object_is_live, gy__try_incref, ck_epoch_begin, ck_epoch_end, use };
hidden mtype at;

int  ref_shared = ID_TAKEN; /* the cell's header: O1, its id taken */
byte ref_local = 1;
byte serial = 0;            /* the cell's reuse counter (seg->serials[i]) */

/* ghosts */
byte gen = 1;               /* which object the cell holds */
byte refs = 1;              /* references to the cell's current object */
bit  freeing, freed;        /* of the cell's current object */
byte nfree1, nfree2;        /* frees of O1, of O2 */
bit  in_section;            /* the Lookup thread is inside its epoch section */
bit  grace_wait;            /* a free happened while the Lookup was inside */
bit  owner_done, lookup_done;

#define ALIVE assert(!freed)

/* release_cell with the object's final shared word in s. */
inline release_cell_() {
  atomic { at = release_cell; ALIVE; assert(refs == 0 && CNT(ref_shared) == 0);
    if
    :: s & ID_TAKEN -> serial++ /* its id is out there: a new object gets a new one */
    :: else -> skip
    fi }
  /* gy__arena_free_cell / _now: cell_mark_dead; reused after a grace period */
  atomic { at = gy__arena_free_cell; ALIVE; freed = true;
    if
    :: gen == 1 -> nfree1++
    :: else -> nfree2++
    fi;
    ref_local = UNOWNED; ref_shared = DEAD;
    grace_wait = (in_section && (s & (PUBLISHED | ID_TAKEN)) != 0) }
}

/* object_free_now without finalizer. */
inline free_now() {
  atomic { at = object_free_now; ALIVE; s = ref_shared; freeing = true }
  atomic { at = type_clear; ALIVE; s = ref_shared }
  release_cell_()
}

/* gy_decref by the Owner of the cell's current object. */
inline owner_decref() {
  atomic { at = gy_decref; ALIVE; assert(ref_local == 1); ref_local = 0; refs-- }
  atomic { at = free_simple; ALIVE; s = ref_shared }
  if
  :: s == 0 -> release_cell_() /* free_simple: nothing else involved */
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
}

/* decref_shared by the Lookup thread (CAS loop: one RMW), and the free. */
inline lookup_decref() {
  atomic { at = decref_shared; ALIVE; assert(gen == mygen); s = ref_shared - ONE; dealloc = false;
    if
    :: ref_shared & MERGED -> dealloc = (CNT(s) == 0 && !(ref_shared & QUEUED))
    :: else -> assert(CNT(s) >= 0)
    fi;
    ref_shared = s; refs-- }
  if
  :: dealloc -> free_now()
  :: else -> skip
  fi
}

proctype Owner() {
  int s; bool dealloc;
  owner_decref(); /* O1 */
  do
  :: atomic { freed && !grace_wait && gen == 1 -> /* the grace period has passed: reuse */
      at = gy__cell_init_object; gen = 2; freed = false; freeing = false; refs = 1; ref_local = 1 }
    atomic { at = gy__cell_init_object; ref_shared = 0 }
    owner_decref(); /* O2: never published, no id */
    break
  :: lookup_done -> break
  od;
  owner_done = true
}

proctype Lookup() {
  int s; bool dealloc, ok; byte mygen;
  atomic { at = ck_epoch_begin; in_section = 1 }
  /* gy_object_from_id(id = {cell, serial 0}), threads_lock and seg_lock held */
  atomic { at = gy__object_is_live; ok = (ref_local == UNOWNED) }
  atomic { at = gy__object_is_live; ok = !(ok && ref_shared == DEAD) }
  if
  :: ok -> atomic { at = gy_object_from_id; ok = (serial == 0) }
  :: else -> skip
  fi;
  if
  :: ok -> /* gy__try_incref: not the owner (CAS loop: one RMW) */
    atomic { at = gy__try_incref;
      if
      :: (ref_shared & DOOMED) || ((ref_shared & MERGED) && CNT(ref_shared) == 0) -> ok = false
      :: else -> ALIVE; assert(!freeing); ref_shared = ref_shared + ONE; refs++; mygen = gen; ok = true
      fi }
  :: else -> skip
  fi;
  if
  :: ok ->
    atomic { at = gy_object_from_id; ok = (serial == 0) } /* the re-check */
    if
    :: ok -> atomic { at = use; ALIVE; assert(mygen == 1 && gen == 1) } /* the id's object */
    :: else -> skip
    fi;
    lookup_decref() /* done with it, or the undo (gy_decref) */
  :: else -> skip
  fi;
  atomic { at = ck_epoch_end; in_section = 0; grace_wait = 0 }
  lookup_done = true
}

active proctype monitor() {
  assert(refs == OWNED(ref_local) + CNT(ref_shared))
}

active proctype end_check() {
  atomic { owner_done && lookup_done ->
    assert(freed && refs == 0 && nfree1 == 1 && nfree2 == (gen == 2 -> 1 : 0)) }
}

init {
  atomic { run Owner(); run Lookup() }
}
