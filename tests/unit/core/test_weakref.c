/* Weak references, weak-value dictionaries and weak sets.
 *   core.seed_tracked_object  a weak registry of instances; the live count
 *                             drops as instances die
 *   core.seed_smart_cache     WeakValueDictionary: a hit while someone holds
 *                             the value, a miss after the last holder lets go
 *   core.seed_resource_pool   WeakSet: active_count() falls to 0 once every
 *                             resource is released
 *   core.weakref              callbacks (once, newest first), dead weakrefs,
 *                             a finalizer mutating the list it was removed
 *                             from, and get racing the last decref
 * Run as `test_core_weakref NAME`. */
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "gy_rt.h"

typedef struct thing {
    gy_object ob;
    gy_ref next;
    int id;
} thing;

static int thing_traverse(gy_object *self, gy_visit_fn visit, void *arg) {
    GY_VISIT(&((thing *)self)->next, visit, arg);
    return 0;
}
static void thing_clear(gy_object *self) { gy_ref_clear(&((thing *)self)->next); }
static gy_type thing_type = {
    .name = "thing", .size = sizeof(thing), .traverse = thing_traverse, .clear = thing_clear};

/* --- the seed --------------------------------------------------------- */

/* class TrackedObject: _instances = weakref.WeakSet(); count = len(...) */
static gy_weakset *instances;

static thing *tracked_new(int id) {
    thing *t;
    assert_int_equal(gy_new(&thing_type, &t), GY_OK);
    t->id = id;
    assert_int_equal(gy_weakset_add(instances, t), GY_OK);
    return t;
}

static void test_seed_tracked_object(void **state) {
    (void)state;
    GY_TEST_UP();
    assert_int_equal(gy_weakset_new(&instances), GY_OK);
    thing *objs[10];
    for (int i = 0; i < 10; i++) {
        objs[i] = tracked_new(i);
    }
    assert_int_equal(gy_weakset_len(instances), 10);
    for (int i = 0; i < 10; i++) {
        gy_decref(objs[i]);
        assert_int_equal(gy_weakset_len(instances), (size_t)(9 - i));
    }
    gy_decref(instances);
    GY_TEST_DOWN();
}

/* SmartCache: get(key) hits while the value is held elsewhere. */
static void test_seed_smart_cache(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_weakdict *cache;
    assert_int_equal(gy_weakdict_new(&cache), GY_OK);
    thing *value;
    assert_int_equal(gy_new(&thing_type, &value), GY_OK);
    value->id = 42;
    assert_int_equal(gy_weakdict_set(cache, "answer", value), GY_OK);
    assert_int_equal(gy_refcount(value), 1); /* the cache holds no strong ref */
    thing *hit = (thing *)gy_weakdict_get(cache, "answer");
    assert_ptr_equal(hit, value);
    assert_int_equal(hit->id, 42);
    gy_decref(hit);
    assert_int_equal(gy_weakdict_len(cache), 1);
    gy_decref(value); /* the last holder lets go */
    assert_null(gy_weakdict_get(cache, "answer"));
    assert_int_equal(gy_weakdict_len(cache), 0);
    assert_null(gy_weakdict_get(cache, "never"));
    /* Entries are really removed, not just dead: the weakref objects go. */
    gy_type_stats st;
    gy_type_get_stats(&gy_weakref_type, &st);
    assert_int_equal(st.live, 0);
    gy_decref(cache);
    GY_TEST_DOWN();
}

/* ResourcePool: acquire() registers in a WeakSet; active_count(). */
static void test_seed_resource_pool(void **state) {
    (void)state;
    GY_TEST_UP();
    gy_weakset *active;
    assert_int_equal(gy_weakset_new(&active), GY_OK);
    thing *res[5];
    for (int i = 0; i < 5; i++) {
        assert_int_equal(gy_new(&thing_type, &res[i]), GY_OK);
        assert_int_equal(gy_weakset_add(active, res[i]), GY_OK);
        assert_int_equal(gy_weakset_add(active, res[i]), GY_OK); /* idempotent */
    }
    assert_int_equal(gy_weakset_len(active), 5);
    assert_true(gy_weakset_contains(active, res[3]));
    assert_int_equal(gy_weakset_discard(active, res[3]), GY_OK);
    assert_false(gy_weakset_contains(active, res[3]));
    assert_int_equal(gy_weakset_len(active), 4);
    for (int i = 0; i < 5; i++) {
        gy_decref(res[i]);
    }
    assert_int_equal(gy_weakset_len(active), 0);
    gy_decref(active);
    GY_TEST_DOWN();
}

/* --- weakref semantics ------------------------------------------------------ */

static char order[64];
static void record(gy_weakref *wr, void *arg) {
    assert_null(gy_weakref_get(wr)); /* already cleared when called */
    size_t n = strlen(order);
    snprintf(order + n, sizeof order - n, "%s", (const char *)arg);
}

static void test_callbacks_once_newest_first(void **state) {
    (void)state;
    GY_TEST_UP();
    order[0] = '\0';
    thing *t;
    assert_int_equal(gy_new(&thing_type, &t), GY_OK);
    static char la[] = "a", lb[] = "b", lc[] = "c";
    gy_weakref *a, *b, *c, *d;
    assert_int_equal(gy_weakref_new(&a, t, record, la), GY_OK);
    assert_int_equal(gy_weakref_new(&b, t, record, lb), GY_OK);
    assert_int_equal(gy_weakref_new(&c, t, record, lc), GY_OK);
    assert_int_equal(gy_weakref_new(&d, t, NULL, NULL), GY_OK);
    assert_int_equal(gy_weakref_count(t), 4);
    gy_decref(b); /* a weakref that dies first never calls back */
    assert_int_equal(gy_weakref_count(t), 3);
    gy_object *got = gy_weakref_get(a);
    assert_ptr_equal(got, t);
    gy_decref(got);
    gy_decref(t);
    assert_string_equal(order, "ca");
    assert_null(gy_weakref_get(a));
    assert_null(gy_weakref_get(d));
    gy_decref(a);
    gy_decref(c);
    gy_decref(d);
    assert_int_equal(gy_weakref_new(&a, NULL, NULL, NULL), GY_EINVAL);
    GY_TEST_DOWN();
}

/* Many referents share the registry's stripes and probe runs: each death
 * must clear exactly its own weak references, whatever the order. */
#define MANY 3000
static int calls[MANY];
static void count_call(gy_weakref *wr, void *arg) {
    (void)wr;
    calls[(int *)arg - calls]++;
}

static void test_many_referents(void **state) {
    (void)state;
    GY_TEST_UP();
    static thing *objs[MANY];
    static gy_weakref *wrs[MANY][2];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(gy_new(&thing_type, &objs[i]), GY_OK);
        objs[i]->id = i;
        for (int k = 0; k < 2; k++) {
            assert_int_equal(gy_weakref_new(&wrs[i][k], objs[i], count_call, &calls[i]), GY_OK);
        }
    }
    /* Free in a scrambled order, checking the survivors each time. */
    for (int step = 0; step < MANY; step++) {
        int i = (int)(((long)step * 7919) % MANY);
        gy_decref(objs[i]);
        objs[i] = NULL;
        assert_int_equal(calls[i], 2);
        if (step % 97 == 0) {
            for (int j = 0; j < MANY; j++) {
                gy_object *o = gy_weakref_get(wrs[j][1]);
                assert_ptr_equal(o, objs[j]);
                assert_int_equal(calls[j], objs[j] ? 0 : 2);
                gy_xdecref(o);
            }
        }
    }
    for (int i = 0; i < MANY; i++) {
        assert_int_equal(calls[i], 2);
        gy_decref(wrs[i][0]);
        gy_decref(wrs[i][1]);
    }
    GY_TEST_DOWN();
}

/* A finalizer that mutates the list its object was just removed from: no
 * Gyre lock may be held while it runs (it would deadlock). */
static gy_list *registry;
static void fin_touch_registry(gy_object *self) {
    (void)self;
    thing *extra;
    assert_int_equal(gy_new(&thing_type, &extra), GY_OK);
    assert_int_equal(gy_list_append(registry, extra), GY_OK);
    gy_decref(extra);
    (void)gy_list_len(registry);
}
static gy_type touchy_type = {.name = "touchy",
                              .size = sizeof(thing),
                              .traverse = thing_traverse,
                              .clear = thing_clear,
                              .finalize = fin_touch_registry};

static void test_finalizer_mutates_container(void **state) {
    (void)state;
    GY_TEST_UP();
    assert_int_equal(gy_list_new(&registry), GY_OK);
    thing *t;
    assert_int_equal(gy_new(&touchy_type, &t), GY_OK);
    assert_int_equal(gy_list_append(registry, t), GY_OK);
    gy_decref(t);
    gy_object *popped;
    assert_int_equal(gy_list_pop(registry, &popped), GY_OK);
    gy_decref(popped); /* finalizer runs and appends to the same list */
    assert_int_equal(gy_list_len(registry), 1);
    assert_int_equal(gy_list_set(registry, 0, registry), GY_OK); /* self-reference */
    assert_int_equal(gy_list_set(registry, 0, registry), GY_OK);
    gy_list_clear(registry); /* break it */
    gy_decref(registry);
    GY_TEST_DOWN();
}

/* gy_weakref_get racing the last decref on another thread: both outcomes
 * (got the object / found it dead) must happen. */
static gy_weakref *shared_wr;
static atomic_int phase; /* 0 wait, 1 go, 2 done */
static atomic_long got_alive, got_dead;
static pthread_barrier_t round_start, round_end;

static void *getter(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    for (;;) {
        pthread_barrier_wait(&round_start);
        if (atomic_load(&phase) == 2) {
            break;
        }
        gy_object *o = gy_weakref_get(shared_wr);
        if (o != NULL) {
            atomic_fetch_add(&got_alive, 1);
            gy_decref(o);
        } else {
            atomic_fetch_add(&got_dead, 1);
        }
        gy_safepoint();
        pthread_barrier_wait(&round_end);
    }
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_get_races_last_decref(void **state) {
    (void)state;
    GY_TEST_UP();
    pthread_barrier_init(&round_start, NULL, 2);
    pthread_barrier_init(&round_end, NULL, 2);
    atomic_store(&phase, 1);
    pthread_t g;
    assert_int_equal(pthread_create(&g, NULL, getter, NULL), 0);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long rounds = 0;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        bool enough = atomic_load(&got_alive) > 20 && atomic_load(&got_dead) > 20 && rounds > 2000;
        if (enough || now.tv_sec - t0.tv_sec > 20) {
            break;
        }
        thing *t;
        assert_int_equal(gy_new(&thing_type, &t), GY_OK);
        assert_int_equal(gy_weakref_new(&shared_wr, t, NULL, NULL), GY_OK);
        pthread_barrier_wait(&round_start);
        for (volatile int spin = 0; spin < (int)(rounds % 200); spin++) {
        }
        gy_decref(t); /* the last strong reference, racing the getter */
        pthread_barrier_wait(&round_end);
        gy_safepoint();
        gy_decref(shared_wr);
        rounds++;
    }
    atomic_store(&phase, 2);
    pthread_barrier_wait(&round_start);
    pthread_join(g, NULL);
    pthread_barrier_destroy(&round_start);
    pthread_barrier_destroy(&round_end);
    for (int i = 0; i < 4; i++) {
        gy_safepoint();
    }
    print_message("rounds %ld: upgraded %ld, found dead %ld\n", rounds, atomic_load(&got_alive),
                  atomic_load(&got_dead));
    assert_true(atomic_load(&got_alive) > 0);
    assert_true(atomic_load(&got_dead) > 0);
    gy_type_stats st;
    gy_type_get_stats(&thing_type, &st);
    assert_int_equal(st.live, 0);
    GY_TEST_DOWN();
}

/* A weak-value cache shared by two threads: values die on either thread
 * (their callbacks remove entries on the thread where they die) while the
 * other sets and gets; at the end the cache itself dies while values it
 * held are still alive. TSan checks the hand-offs; the counts check that
 * entries really went away and that both threads saw hits and misses. */
static gy_weakdict *shared_cache;
static atomic_int cache_phase; /* 1 run, 2 stop */
static atomic_long cache_hits[2], cache_misses[2];

static void cache_worker(int self) {
    gy_list *mine;
    assert_int_equal(gy_list_new(&mine), GY_OK);
    char key[32];
    unsigned r = 12345u + (unsigned)self;
    for (long i = 0; atomic_load(&cache_phase) == 1 && i < 200000; i++) {
        r = r * 1103515245u + 12345u;
        snprintf(key, sizeof key, "k%u", (r >> 8) % 64);
        gy_object *v = gy_weakdict_get(shared_cache, key);
        if (v != NULL) {
            atomic_fetch_add(&cache_hits[self], 1);
            gy_decref(v); /* may be the last reference: dies here */
        } else {
            atomic_fetch_add(&cache_misses[self], 1);
            thing *t;
            assert_int_equal(gy_new(&thing_type, &t), GY_OK);
            assert_int_equal(gy_weakdict_set(shared_cache, key, t), GY_OK);
            assert_int_equal(gy_list_append(mine, t), GY_OK); /* keep it a while */
            gy_decref(t);
        }
        if (i % 16 == 0) {
            gy_list_clear(mine); /* the values we held die (unless the other holds one) */
        }
        gy_safepoint();
    }
    gy_decref(mine);
}

static void *cache_thread(void *arg) {
    (void)arg;
    assert_int_equal(gy_thread_attach(NULL, NULL), GY_OK);
    cache_worker(1);
    assert_int_equal(gy_thread_detach(), GY_OK);
    return NULL;
}

static void test_weakdict_across_threads(void **state) {
    (void)state;
    GY_TEST_UP();
    assert_int_equal(gy_weakdict_new(&shared_cache), GY_OK);
    atomic_store(&cache_phase, 1);
    pthread_t b;
    assert_int_equal(pthread_create(&b, NULL, cache_thread, NULL), 0);
    cache_worker(0);
    atomic_store(&cache_phase, 2);
    pthread_join(b, NULL);
    for (int i = 0; i < 4; i++) {
        gy_safepoint(); /* merges handed to us by the other thread */
    }
    /* Every value died: the cache is empty, its weakrefs gone. */
    assert_int_equal(gy_weakdict_len(shared_cache), 0);
    gy_type_stats st;
    gy_type_get_stats(&thing_type, &st);
    assert_int_equal(st.live, 0);
    print_message("hits %ld/%ld, misses %ld/%ld\n", atomic_load(&cache_hits[0]),
                  atomic_load(&cache_hits[1]), atomic_load(&cache_misses[0]),
                  atomic_load(&cache_misses[1]));
    assert_true(atomic_load(&cache_hits[0]) > 0 && atomic_load(&cache_hits[1]) > 0);
    assert_true(atomic_load(&cache_misses[0]) > 0 && atomic_load(&cache_misses[1]) > 0);
    /* The cache dies first while a value lives on: the value's later death
     * must not touch the dead cache. */
    thing *survivor;
    assert_int_equal(gy_new(&thing_type, &survivor), GY_OK);
    assert_int_equal(gy_weakdict_set(shared_cache, "survivor", survivor), GY_OK);
    gy_decref(shared_cache);
    gy_decref(survivor);
    gy_type_get_stats(&gy_weakref_type, &st);
    assert_int_equal(st.live, 0);
    GY_TEST_DOWN();
}

int main(int argc, char **argv) {
    const struct CMUnitTest seeds[] = {
        cmocka_unit_test(test_seed_tracked_object),
        cmocka_unit_test(test_seed_smart_cache),
        cmocka_unit_test(test_seed_resource_pool),
    };
    const struct CMUnitTest rest[] = {
        cmocka_unit_test(test_callbacks_once_newest_first),
        cmocka_unit_test(test_many_referents),
        cmocka_unit_test(test_finalizer_mutates_container),
        cmocka_unit_test(test_get_races_last_decref),
        cmocka_unit_test(test_weakdict_across_threads),
    };
    if (argc < 2 || strcmp(argv[1], "weakref") == 0) {
        return cmocka_run_group_tests_name("weakref", rest, NULL, NULL) != 0;
    }
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        if (strcmp(seeds[i].name + strlen("test_"), argv[1]) == 0) {
            const struct CMUnitTest one[] = {seeds[i]};
            return cmocka_run_group_tests_name(argv[1], one, NULL, NULL) != 0;
        }
    }
    fprintf(stderr, "unknown test '%s'\n", argv[1]);
    return 2;
}
