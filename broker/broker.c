/* broker.c — wiring: the store, the listeners, the worker threads, the
 * housekeeping thread, and an orderly stop. */
#include "broker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "group.h"
#include "kdispatch.h"
#include "log.h"

#define DRAIN_MS 5000
/* Decoding one request may use at most this much arena memory. */
#define ARENA_LIMIT (8u << 20)

static int spare_fd = -1; /* released to accept-and-close when out of fds */

/* Binds a listening socket; *port 0 picks one and reports it. Returns the
 * fd, or -1 with err set. */
static int listen_on(const char *host, int *port, int reuseport, sl_err_t *err)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", *port);
    int e = getaddrinfo(host, ps, &hints, &ai);
    if (e != 0) {
        sl_err_set(err, SL_ERR_INVALID_CONFIG, "cannot resolve %s: %s", host, gai_strerror(e));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
        sl_err_set(err, SL_ERR_INVALID_CONFIG, "cannot listen on %s:%d: %s", host, *port,
                   strerror(errno));
        if (fd >= 0) close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    *port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                           : ((struct sockaddr_in *)&sa)->sin_port);
    return fd;
}

static void peer_name(int fd, char *buf, size_t n)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof sa;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (getpeername(fd, (struct sockaddr *)&sa, &sl) == 0) {
        if (sa.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;
            inet_ntop(AF_INET, &s4->sin_addr, host, sizeof host);
            port = ntohs(s4->sin_port);
        } else if (sa.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof host);
            port = ntohs(s6->sin6_port);
        }
    }
    snprintf(buf, n, "%s:%d", host, port);
}

static void accept_loop(worker_listener_t *wl);

static void on_accept(void *arg, uint32_t ev)
{
    (void)ev;
    accept_loop(arg);
}

static void on_accept_task(void *arg)
{
    worker_listener_t *wl = arg;
    if (!wl->w->draining) accept_loop(wl);
}

/* Accepts until EAGAIN (edge mode delivers one event for the whole backlog). */
static void accept_loop(worker_listener_t *wl)
{
    worker_t *w = wl->w;
    reactor_handle_t *lh = &wl->h;
    broker_t *b = w->b;
    for (int i = 0; i < 256; i++) {
        int fd = accept4(lh->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if ((errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
                /* Out of fds: take one from the backlog and shut it, rather
                 * than leave the backlog stuck with no new edge to report it. */
                close(spare_fd);
                int x = accept(lh->fd, NULL, NULL);
                if (x >= 0) close(x);
                spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                met_add(&w->m.rejected, 1);
                log_warn("net", "out of file descriptors: connection refused");
                continue;
            }
            return; /* EAGAIN */
        }
        if (atomic_load(&b->nconns) >= b->conf.max_connections) {
            close(fd);
            met_add(&w->m.rejected, 1);
            log_warn("net", "max.connections (%lld) reached: connection refused",
                     (long long)b->conf.max_connections);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char peer[64];
        peer_name(fd, peer, sizeof peer);
        if (!conn_new(w, fd, peer, protocols[wl->proto])) {
            close(fd);
            log_warn("net", "cannot register connection from %s", peer);
        }
    }
    /* Budget for this wake-up used: finish the backlog next round. */
    reactor_defer(w->r, on_accept_task, wl);
}

static void on_metrics_accept(void *arg, uint32_t ev)
{
    (void)ev;
    worker_t *w = arg;
    for (;;) {
        int fd = accept4(w->metrics_h.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            return;
        }
        metrics_http_accept(w, fd);
    }
}

static void budget_tick(void *arg)
{
    worker_t *w = arg;
    if (broker_budget_over(w->b)) {
        if (w->paused) reactor_timer_start(w->r, &w->budget_timer, 5);
        return;
    }
    while (w->paused && !broker_budget_over(w->b)) {
        conn_t *c = w->paused;
        w->paused = c->next_paused;
        c->paused = 0;
        conn_resume(c);
    }
    if (w->paused) reactor_timer_start(w->r, &w->budget_timer, 5);
}

static uint64_t idle_period(const broker_t *b)
{
    int64_t idle = b->conf.connections_max_idle_ms, rt = b->conf.request_read_timeout_ms;
    if (rt > 0 && (idle <= 0 || rt < idle)) idle = rt;
    uint64_t p = idle > 0 ? (uint64_t)idle / 4 : 1000;
    return p < 10 ? 10 : p > 1000 ? 1000 : p;
}

static void idle_tick(void *arg)
{
    worker_t *w = arg;
    conn_reap_idle(w, reactor_now_ms(w->r));
    reactor_timer_start(w->r, &w->idle_timer, idle_period(w->b));
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    int rc = reactor_run(w->r);
    if (rc < 0) log_error("reactor", "worker %d: epoll_wait: %s", w->id, strerror(-rc));
    return NULL;
}

static void *housekeeping(void *arg)
{
    broker_t *b = arg;
    pthread_mutex_lock(&b->hk_mu);
    while (!b->hk_stop) {
        struct timespec ts = sl_abstime(CLOCK_REALTIME, b->conf.retention_check_interval_ms);
        pthread_cond_timedwait(&b->hk_cv, &b->hk_mu, &ts);
        if (b->hk_stop) break;
        pthread_mutex_unlock(&b->hk_mu);
        store_housekeeping_t hk;
        store_housekeep(b->store, sl_wall_ms(), &hk);
        if (hk.rolled || hk.deleted)
            log_info("housekeeping", "rolled %d segments, deleted %d by retention", hk.rolled,
                     hk.deleted);
        if (hk.errors)
            log_error("housekeeping", "%d errors; last: %s", hk.errors, hk.last_error.msg);
        pthread_mutex_lock(&b->hk_mu);
    }
    pthread_mutex_unlock(&b->hk_mu);
    return NULL;
}

/* A partition recovered after an unclean shutdown: say what it cost, and
 * loudly when data was dropped (a torn tail is expected after a crash;
 * whole segments deleted point at damage at rest: see sluiced --verify). */
static void log_recovery(void *arg, const char *topic, int32_t id, const partition_recovery_t *r)
{
    (void)arg;
    if (r->segments_deleted > 0)
        log_error("storage",
                  "%s-%d recovered: %d later segments deleted after a bad batch (%" PRIu64
                  " bytes dropped, %" PRIu64 " scanned): %s; if this was not a crash, check the "
                  "disk and run sluiced --verify on a copy",
                  topic, id, r->segments_deleted, r->bytes_truncated, r->bytes_scanned, r->reason);
    else if (r->bytes_truncated > 0)
        log_warn("storage",
                 "%s-%d recovered: torn tail truncated (%" PRIu64 " bytes dropped, %" PRIu64
                 " scanned): %s",
                 topic, id, r->bytes_truncated, r->bytes_scanned, r->reason);
    else
        log_debug("storage", "%s-%d recovered: %" PRIu64 " bytes scanned, nothing dropped", topic,
                  id, r->bytes_scanned);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The listener of protocols[i] as configured: "" when it is off. */
static const char *listener_conf(const broker_conf_t *conf, int i)
{
    return (const char *)conf + protocols[i]->conf_offset;
}

/* SO_REUSEPORT would let this process join another's listening group on
 * the same port and silently share its clients: probe each configured
 * port first with a plain bind, which fails if anyone listens there. */
static int probe_listeners(broker_t *b, sl_err_t *err)
{
    for (int i = 0; i < PROTOCOLS; i++) {
        listener_t *l = &b->listeners[i];
        const char *spec = listener_conf(&b->conf, i);
        if (!spec[0]) continue;
        conf_parse_hostport(spec, l->host, sizeof l->host, &l->port, NULL);
        if (l->port == 0) continue;
        int probe = listen_on(l->host, &l->port, 0, err);
        if (probe < 0) {
            if (i == 0) return SL_ERR_INVALID_CONFIG;
            char msg[sizeof err->msg];
            snprintf(msg, sizeof msg, "%s", err->msg);
            return sl_err_set(err, SL_ERR_INVALID_CONFIG, "%s.listeners: %s", protocols[i]->name,
                              msg);
        }
        close(probe);
    }
    return SL_OK;
}

/* One socket per worker for every configured listener; the first picks
 * the port when 0 was asked, the others share it. */
static int bind_listeners(broker_t *b, int n, sl_err_t *err)
{
    for (int i = 0; i < PROTOCOLS; i++) {
        listener_t *l = &b->listeners[i];
        if (!l->host[0]) continue;
        for (int k = 0; k < n; k++) {
            int fd = listen_on(l->host, &l->port, 1, err);
            if (fd < 0) return SL_ERR_INVALID_CONFIG;
            l->fds[k] = fd;
        }
        if (protocols[i]->on_bound) protocols[i]->on_bound(b, l->host, l->port);
    }
    return SL_OK;
}

int broker_start(broker_t *b, const broker_conf_t *conf, sl_err_t *err)
{
    memset(b, 0, sizeof *b);
    b->conf = *conf;
    b->metrics_fd = -1;
    for (int i = 0; i < PROTOCOLS; i++)
        for (int k = 0; k < BROKER_MAX_REACTORS; k++) b->listeners[i].fds[k] = -1;
    pthread_mutex_init(&b->hk_mu, NULL);
    pthread_cond_init(&b->hk_cv, NULL);
    raise_fd_limit();
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int n = (int)conf->num_reactors;
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
        if (n > BROKER_MAX_REACTORS)
            n = BROKER_MAX_REACTORS; /* a chosen default, not a user's value */
    }
    if (n > BROKER_MAX_REACTORS) /* conf.c bounds it; a struct filled elsewhere may not */
        return sl_err_set(err, SL_ERR_INVALID_CONFIG, "num.reactors %d: at most %d", n,
                          BROKER_MAX_REACTORS);
    b->nworkers = n;
    int rc = probe_listeners(b, err);
    if (rc != SL_OK) return rc;

    store_opts_t so = {.dir = conf->log_dirs,
                       .defaults = &conf->topic,
                       .max_open_segments = (uint32_t)conf->max_open_segments};
    rc = store_open(&so, &b->store, err);
    if (rc != SL_OK) goto fail;
    store_set_on_append(b->store, watch_partition_appended, b);
    store_set_on_recover(b->store, log_recovery, b);
    if ((rc = kafka_cluster_id(b, err)) != SL_OK) goto fail;
    log_info("storage", "data directory %s opened; last shutdown: %s", conf->log_dirs,
             store_was_clean(b->store)
                 ? "clean"
                 : "unclean or first start (partitions are recovered as they open)");
    char gerr[300];
    if ((rc = groups_start(b, gerr, sizeof gerr)) != SL_OK) {
        sl_err_set(err, rc, "%s", gerr);
        goto fail;
    }

    b->workers = calloc((size_t)n, sizeof *b->workers);
    if (!b->workers) {
        rc = sl_err_set(err, SL_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = bind_listeners(b, n, err)) != SL_OK) goto fail;
    snprintf(b->host, sizeof b->host, "%s", b->listeners[0].host);
    b->port = b->listeners[0].port;
    if (conf->metrics_listener[0]) {
        char mh[256];
        int mp;
        conf_parse_hostport(conf->metrics_listener, mh, sizeof mh, &mp, NULL);
        int fd = listen_on(mh, &mp, 0, err);
        if (fd < 0) {
            rc = SL_ERR_INVALID_CONFIG;
            goto fail;
        }
        b->metrics_fd = fd;
        b->metrics_port = mp;
        log_info("net", "metrics on http://%s:%d/metrics", mh, mp);
    }
    for (int i = 0; i < n; i++) {
        worker_t *w = &b->workers[i];
        w->b = b;
        w->id = i;
        w->r = reactor_new((int)conf->reactor_edge);
        w->scratch = malloc(SCRATCH);
        sl_arena_init(&w->arena, w->arena_block, sizeof w->arena_block, ARENA_LIMIT);
        if (!w->r || !w->scratch) {
            rc = sl_err_set(err, SL_ERR_UNKNOWN, "epoll: %s", strerror(errno));
            goto fail;
        }
        for (int k = 0; k < PROTOCOLS; k++) {
            worker_listener_t *wl = &w->listen[k];
            wl->w = w;
            wl->proto = k;
            wl->h = (reactor_handle_t){.fd = b->listeners[k].fds[i], .fn = on_accept, .arg = wl};
            if (wl->h.fd >= 0) reactor_add(w->r, &wl->h, REACTOR_IN);
        }
        if (i == 0 && b->metrics_fd >= 0) {
            w->metrics_h =
                (reactor_handle_t){.fd = b->metrics_fd, .fn = on_metrics_accept, .arg = w};
            reactor_add(w->r, &w->metrics_h, REACTOR_IN);
        }
        reactor_timer_init(&w->budget_timer, budget_tick, w);
        reactor_timer_init(&w->idle_timer, idle_tick, w);
        reactor_timer_start(w->r, &w->idle_timer, idle_period(b));
    }
    groups_start_tick(b);
    /* Threads last: everything above can still be undone by `fail`. A
     * failure to start a thread is fatal for the process (main exits). */
    for (int i = 0; i < n; i++)
        if (pthread_create(&b->workers[i].thread, NULL, worker_main, &b->workers[i]) != 0)
            return sl_err_set(err, SL_ERR_UNKNOWN, "cannot start worker threads");
    if (pthread_create(&b->hk_thread, NULL, housekeeping, b) != 0)
        return sl_err_set(err, SL_ERR_UNKNOWN, "cannot start the housekeeping thread");
    b->start_ms = reactor_clock_ms();
    log_info("net", "listening on %s:%d (sluice protocol, %d %s-triggered reactors)", b->host,
             b->port, n, conf->reactor_edge ? "edge" : "level");
    return SL_OK;
fail:
    for (int i = 0; b->workers && i < n; i++) {
        reactor_free(b->workers[i].r);
        free(b->workers[i].scratch);
        sl_arena_free(&b->workers[i].arena);
    }
    free(b->workers);
    for (int i = 0; i < PROTOCOLS; i++)
        for (int k = 0; k < n; k++)
            if (b->listeners[i].fds[k] >= 0) close(b->listeners[i].fds[k]);
    if (b->metrics_fd >= 0) close(b->metrics_fd);
    store_close(b->store);
    groups_free(b);
    if (spare_fd >= 0) close(spare_fd);
    return rc;
}

/* ---- stopping ---- */

static int busy(worker_t *w)
{
    if (w->pending_flushes) return 1;
    for (conn_t *c = w->conns; c; c = c->next)
        if (c->shead || c->ohead) return 1;
    return 0;
}

static void drain_check(void *arg);

static void drain_start(void *arg)
{
    worker_t *w = arg;
    w->draining = 1;
    for (int k = 0; k < PROTOCOLS; k++)
        if (w->listen[k].h.fd >= 0) {
            reactor_del(w->r, &w->listen[k].h);
            close(w->listen[k].h.fd);
        }
    if (w->id == 0 && w->b->metrics_fd >= 0) {
        reactor_del(w->r, &w->metrics_h);
        close(w->b->metrics_fd);
    }
    watch_notify_all(w); /* long polls answer with what there is */
    reactor_timer_stop(w->r, &w->idle_timer);
    reactor_timer_init(&w->idle_timer, drain_check, w);
    drain_check(w);
}

static void drain_check(void *arg)
{
    worker_t *w = arg;
    if (!busy(w)) {
        reactor_stop(w->r);
        return;
    }
    reactor_timer_start(w->r, &w->idle_timer, 10);
}

void broker_stop(broker_t *b)
{
    log_info("broker", "stopping: draining %lld connections", (long long)atomic_load(&b->nconns));
    groups_close(b); /* parked joins and syncs would hold up the drain */
    for (int i = 0; i < b->nworkers; i++) {
        reactor_task_init(&b->workers[i].drain_task, drain_start, &b->workers[i]);
        reactor_post_task(b->workers[i].r, &b->workers[i].drain_task);
    }
    /* Bounded: a worker that cannot drain in time is stopped anyway. */
    int64_t deadline = sl_mono_ms() + DRAIN_MS;
    for (int i = 0; i < b->nworkers; i++) {
        int64_t left = deadline - sl_mono_ms();
        struct timespec ts = sl_abstime(CLOCK_REALTIME, left > 0 ? left : 0);
        if (pthread_timedjoin_np(b->workers[i].thread, NULL, &ts) != 0) {
            reactor_stop(b->workers[i].r);
            pthread_join(b->workers[i].thread, NULL);
        }
    }
    pthread_mutex_lock(&b->hk_mu);
    b->hk_stop = 1;
    pthread_cond_signal(&b->hk_cv);
    pthread_mutex_unlock(&b->hk_mu);
    pthread_join(b->hk_thread, NULL);
    /* Workers are stopped: their queues are drained here, on this thread. */
    int pending = 0;
    for (int i = 0; i < b->nworkers; i++) {
        worker_t *w = &b->workers[i];
        reactor_drain(w->r);
        conn_close_all(w);
        reactor_drain(w->r);
        pending += w->pending_flushes;
    }
    if (pending) {
        log_error("broker",
                  "%d acks=all requests still wait for the disk; stopping without a "
                  "clean shutdown (the next start recovers)",
                  pending);
        store_crash(b->store);
    } else {
        store_close(b->store);
        log_info("broker", "clean shutdown");
    }
    for (int i = 0; i < b->nworkers; i++) {
        reactor_drain(b->workers[i].r);
        reactor_free(b->workers[i].r);
        free(b->workers[i].scratch);
        sl_arena_free(&b->workers[i].arena);
        watch_reg_free(&b->workers[i].watches);
    }
    free(b->workers);
    groups_free(b); /* after the store closed: no commit still waits for a flush */
    if (spare_fd >= 0) close(spare_fd);
    pthread_mutex_destroy(&b->hk_mu);
    pthread_cond_destroy(&b->hk_cv);
}
