/* gyre/failpoint_names.h: every failpoint Gyre's code checks, declared once.
 *
 * X(NAME, WHAT): NAME is what gy_failpoint("NAME") checks and what
 * gy_failpoint_set, GY_FAILPOINTS and gyred's `debug.failpoint` accept;
 * WHAT says what fails when it fires. Any other name is refused (GY_EINVAL)
 * except names beginning "test.", free for tests of the machinery itself.
 * A repository test checks that every gy_failpoint("...") in the sources
 * is listed here and in README.md. */
#ifndef GYRE_FAILPOINT_NAMES_H
#define GYRE_FAILPOINT_NAMES_H

#define GY_FAILPOINT_NAMES(X)                                                                   \
    X("alloc", "an object, raw memory or segment allocation (gy_new, list/dict/bytes growth): " \
               "GY_ENOMEM")                                                                     \
    X("internal", "a reclamation batch or a hand-off node: the cell stays unreused or the "     \
                  "object alive, counted in internal_failures; the collector's young-segment "  \
                  "list (walks every segment)")                                                 \
    X("gc.alloc", "the collector's candidate array: the collection takes fewer candidates or "  \
                  "is skipped (shrunk_nomem, skipped_nomem)")                                   \
    X("gc.worklist", "the collector's marking worklist: marking rescans instead (concurrent "   \
                     "mode: everything survives the collection)")                               \
    X("gc.side", "the concurrent collector's segment snapshot and per-cell numbers: those "     \
                 "segments' objects survive the collection (shrunk_nomem)")                     \
    X("race.last_decref", "not a failure: spins a few microseconds in the owner's last "        \
                          "decrement, between reading the shared count and its CAS")            \
    X("race.merge_queued", "not a failure: spins right after the owner's merge CAS")            \
    X("race.load", "not a failure: spins in gy_load between reading the field and its "         \
                   "try-incref")                                                                \
    X("race.load_reread", "not a failure: spins in gy_load after its try-incref, before it "    \
                          "reads the field again")

#endif /* GYRE_FAILPOINT_NAMES_H */
