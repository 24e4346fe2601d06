/* server/src/workers.c: the worker pool for blocking work: plain Gyre
 * threads taking jobs from one bounded queue (a mutex and a condition
 * variable: waiting workers are quiescent, so a collection never waits for
 * an idle worker). A job holds a reference to its request; when the work
 * function returns, the request goes back to its loop (GY__POST_WORK_DONE),
 * which answers 500 if the function did not answer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv.h"

typedef struct gy__job {
    struct gy__job *next;
    gy_request *req; /* strong */
    gy_request_fn fn;
    void *arg;
} gy__job;

struct gy__workers {
    gy_server *srv;
    pthread_mutex_t lock; /* guards the queue and `stopping` */
    pthread_cond_t cond;
    gy__job *head, *tail;
    size_t queued, queue_max;
    bool stopping;
    bool cancelled;
    int n;
    pthread_t *threads;
};

static void *gy__worker_main(void *arg) {
    gy__workers *w = arg;
    gy_thread_options o = {.kind = GY_THREAD_PLAIN, .name = "worker"};
    if (gy_thread_attach(&o, NULL) != GY_OK) {
        return NULL;
    }
    gy__trimmer trim;
    gy__trimmer_init(&trim, w->srv);
    for (;;) {
        /* Quiescent while waiting: we hold no object across the wait. A
         * worker idle for memory_trim_interval, or asked by memory.purge
         * (gy__workers_wake), trims its heap before it waits on. */
        gy_quiescent_begin();
        pthread_mutex_lock(&w->lock);
        while (w->head == NULL && !w->stopping) {
            if (GY__PURGE_GEN(atomic_load(&w->srv->mem.purge)) == trim.gen) {
                uint64_t due_ms = gy__trimmer_due_ms(&trim, w->srv);
                if (due_ms == 0) {
                    pthread_cond_wait(&w->cond, &w->lock);
                    continue;
                }
                struct timespec until;
                clock_gettime(CLOCK_MONOTONIC, &until); /* the condition's clock */
                until.tv_sec += (time_t)(due_ms / 1000);
                until.tv_nsec += (long)(due_ms % 1000) * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                    until.tv_sec++;
                    until.tv_nsec -= 1000000000L;
                }
                if (pthread_cond_timedwait(&w->cond, &w->lock, &until) != ETIMEDOUT) {
                    continue;
                }
            }
            pthread_mutex_unlock(&w->lock);
            gy_quiescent_end();
            (void)gy__trimmer_tick(&trim, w->srv);
            gy_quiescent_begin();
            pthread_mutex_lock(&w->lock);
        }
        gy__job *job = w->head;
        bool cancelled = w->cancelled;
        if (job != NULL) {
            w->head = job->next;
            if (w->head == NULL) {
                w->tail = NULL;
            }
            w->queued--;
        }
        pthread_mutex_unlock(&w->lock);
        gy_quiescent_end();
        if (job == NULL) {
            break; /* stopping and the queue is empty */
        }
        if (!cancelled) {
            job->fn(job->req, job->arg);
            gy_safepoint();
        }
        /* The reference goes back with the post. */
        gy__loop_post(job->req->loop, GY__POST_WORK_DONE, job->req, NULL);
        free(job);
        (void)gy__trimmer_tick(&trim, w->srv); /* a busy worker trims too, after its post */
    }
    gy_thread_detach();
    return NULL;
}

int gy__workers_start(gy__workers **out, gy_server *srv, int n, size_t queue_max, gy_errmsg *err) {
    gy__workers *w = calloc(1, sizeof *w);
    if (w == NULL || (w->threads = calloc((size_t)n, sizeof *w->threads)) == NULL) {
        free(w);
        return GY_ENOMEM;
    }
    w->srv = srv;
    pthread_mutex_init(&w->lock, NULL);
    /* Timed waits (the trimmer's) on the monotonic clock: a wall-clock
     * step neither delays nor hastens them. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    w->queue_max = queue_max;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w->threads[i], NULL, gy__worker_main, w) != 0) {
            w->n = i;
            gy__workers_stop(w);
            if (err) {
                err->code = GY_EIO;
                snprintf(err->text, sizeof err->text, "cannot start worker thread %d", i);
            }
            return GY_EIO;
        }
        w->n = i + 1;
    }
    *out = w;
    return GY_OK;
}

int gy__workers_submit(gy__workers *w, gy_request *req, gy_request_fn fn, void *arg) {
    gy__job *job = malloc(sizeof *job);
    if (job == NULL) {
        return GY_ENOMEM;
    }
    pthread_mutex_lock(&w->lock);
    if (w->stopping || w->queued >= w->queue_max) {
        int rc = w->stopping ? GY_ESTATE : GY_EAGAIN;
        pthread_mutex_unlock(&w->lock);
        free(job);
        return rc;
    }
    gy_incref(req);
    atomic_fetch_add_explicit(&req->loop->tasks, 1, memory_order_relaxed);
    job->next = NULL;
    job->req = req;
    job->fn = fn;
    job->arg = arg;
    if (w->tail) {
        w->tail->next = job;
    } else {
        w->head = job;
    }
    w->tail = job;
    w->queued++;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return GY_OK;
}

int gy__workers_wake(gy__workers *w) {
    if (w == NULL) {
        return 0;
    }
    pthread_mutex_lock(&w->lock);
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return w->n;
}

void gy__workers_cancel(gy__workers *w) {
    if (w != NULL) {
        pthread_mutex_lock(&w->lock);
        w->cancelled = true;
        pthread_mutex_unlock(&w->lock);
    }
}

void gy__workers_stop(gy__workers *w) {
    if (w == NULL) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->stopping = true;
    pthread_cond_broadcast(&w->cond);
    pthread_mutex_unlock(&w->lock);
    for (int i = 0; i < w->n; i++) {
        pthread_join(w->threads[i], NULL);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w->threads);
    free(w);
}
