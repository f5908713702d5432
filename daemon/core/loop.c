/* The event loop: epoll over watches (an fd and its callback), one timerfd
 * for every timer (timer.c), a signalfd for SIGTERM, SIGINT and SIGHUP, and
 * the core's periodic tick.  It blocks when idle; it polls instead only
 * with --txn-poll-us, while a fault waits for the network (want_poll).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "dsmd.h"
#include "log.h"

/* The loop's polling state (want_poll). */
struct poll_state {
	bool on;               /* polling since a fault started waiting */
	uint64_t last_work_us; /* when polling or a wake-up last found work */
};

int watch_add(struct dsmd *d, struct watch *w, int fd, uint32_t events,
	      void (*fn)(struct dsmd *, struct watch *, uint32_t))
{
	struct epoll_event ev = {.events = events, .data.ptr = w};

	w->fd = fd;
	w->fn = fn;
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev))
		return -errno;
	return 0;
}

void watch_del(struct dsmd *d, struct watch *w)
{
	if (w->fd >= 0)
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, w->fd, NULL);
}

int dsmd_init(struct dsmd *d, const struct clock *clock)
{
	int i;

	d->clock = clock;
	d->listen_fd = d->timer_fd = d->signal_fd = d->memfd = -1;
	d->access.lock_fd = -1;
	d->spare_fd = -1;
	list_init(&d->clients);
	list_init(&d->apps);
	list_init(&d->self_q);
	list_init(&d->deferred);
	d->arena.base = d->cfg.arena_base;
	d->arena.size = d->cfg.arena_size;
	d->arena.npages = d->cfg.arena_size / WIRE_PAGE_SIZE;
	d->start_ms = dsmd_now_ms(d);
	if (d->cfg.job_set) {
		d->job.bound = true;
		d->job.id = d->cfg.job;
	}
	if (d->cfg.job_key && *d->cfg.job_key) {
		if (strlen(d->cfg.job_key) >= sizeof(d->job.key))
			return -ENAMETOOLONG;
		d->job.key_bound = true;
		memcpy(d->job.key, d->cfg.job_key, strlen(d->cfg.job_key));
	}
	for (i = 0; i < d->cfg.nnodes; i++)
		d->members[i].state = i == d->cfg.node ? WIRE_MEMBER_SELF
						       : WIRE_MEMBER_JOINING;
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	return d->epfd < 0 ? -errno : 0;
}

void dsmd_fini(struct dsmd *d)
{
	struct kept *k, *tmp;

	list_for_each_safe(k, tmp, &d->self_q, link)
		free(k);
	list_for_each_safe(k, tmp, &d->deferred, link) {
		timer_stop(d, &k->t);
		free(k);
	}
	list_init(&d->self_q);
	list_init(&d->deferred);
	timer_heap_free(&d->timers);
	if (d->timer_fd >= 0)
		close(d->timer_fd);
	if (d->signal_fd >= 0)
		close(d->signal_fd);
	if (d->epfd >= 0)
		close(d->epfd);
	d->timer_fd = d->signal_fd = d->epfd = -1;
}

/* ---------------------------------------------------------------------- */
/* The timerfd and the tick                                               */

/* Set the timerfd to the first timer, if that changed. */
static void arm_timer_fd(struct dsmd *d)
{
	const struct timer *t = timer_heap_min(&d->timers);
	uint64_t when = t ? t->when_us : 0;
	struct itimerspec its = {0};

	if (d->timer_fd < 0 || when == d->timer_fd_us)
		return;
	d->timer_fd_us = when;
	if (when) {
		/* CLOCK_MONOTONIC, absolute: the core's clock is that
		 * clock in dsmd proper.  0 would disarm: 1 ns is past. */
		its.it_value.tv_sec = (time_t)(when / 1000000u);
		its.it_value.tv_nsec = (long)(when % 1000000u) * 1000L;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	if (timerfd_settime(d->timer_fd, TFD_TIMER_ABSTIME, &its, NULL))
		log_warn("setting the timer: %s", strerror(errno));
}

static void on_timer_fd(struct dsmd *d, struct watch *w, uint32_t events)
{
	uint64_t n;

	(void)events;
	if (read(w->fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_warn("timer: %s", strerror(errno));
	d->timer_fd_us = 0; /* fired: set again below */
	timers_run(d);
}

/* The tick period: the heartbeat period, or faster so that a silent peer
 * is noticed within dead_after + tick. */
static uint64_t tick_us(const struct dsmd *d)
{
	unsigned tick = d->cfg.heartbeat_ms;

	if (tick > d->cfg.dead_after_ms / 4)
		tick = d->cfg.dead_after_ms / 4;
	return (uint64_t)(tick ? tick : 1) * 1000u;
}

static void on_tick(struct dsmd *d, struct timer *t)
{
	size_t i;

	for (i = 0; i < d->modules_up; i++)
		if (dsmd_modules[i]->tick)
			dsmd_modules[i]->tick(d);
	cluster_tick(d);
	if (timer_start(d, t, dsmd_now_us(d) + tick_us(d), on_tick)) {
		/* No heartbeats nor deadlines from here on: stop, loudly. */
		log_err("out of memory for the tick timer");
		d->stop = true;
		d->failed = true;
	}
}

static void on_signal(struct dsmd *d, struct watch *w, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	while (read(w->fd, &si, sizeof(si)) == sizeof(si)) {
		log_info("signal %u: shutting down", si.ssi_signo);
		d->stop = true;
	}
}

int dsmd_loop_setup(struct dsmd *d)
{
	sigset_t set;
	int ret;

	d->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->timer_fd < 0)
		return -errno;
	ret = watch_add(d, &d->timer_w, d->timer_fd, EPOLLIN, on_timer_fd);
	if (ret)
		return ret;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	d->signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->signal_fd < 0)
		return -errno;
	ret = watch_add(d, &d->signal_w, d->signal_fd, EPOLLIN, on_signal);
	if (ret)
		return ret;
	return timer_start(d, &d->tick, dsmd_now_us(d) + tick_us(d), on_tick);
}

/* ---------------------------------------------------------------------- */
/* Waiting                                                                */

/* Whether the loop should poll rather than sleep: --txn-poll-us is set, a
 * fault of this node waits for the network (only then: an idle daemon
 * sleeps), and something came within the last txn_poll_us.  Polling saves
 * the requester's wake-up when the page comes.  It is off by default: on
 * the emulated 2-vCPU guest the poller took a core from the master, the
 * holder and rxe's kernel workers that the miss waits for, and read
 * misses got slower, not faster (docs/architecture.md). */
static bool want_poll(struct dsmd *d, struct poll_state *ps)
{
	uint64_t now;

	if (!d->cfg.txn_poll_us || !d->net_waits) {
		ps->on = false;
		return false;
	}
	now = dsmd_now_us(d);
	if (!ps->on) {
		ps->on = true;
		ps->last_work_us = now;
	}
	return now - ps->last_work_us < d->cfg.txn_poll_us;
}

/* One turn of the loop's wait: poll (return at once) or sleep.  Returns
 * the number of ready events, or a negative errno. */
static int wait_events(struct dsmd *d, struct poll_state *ps,
		       struct epoll_event *evs, int max)
{
	int n, ret;

	arm_timer_fd(d);
	if (want_poll(d, ps)) {
		ret = xport_progress(d->x);
		if (ret < 0)
			return ret;
		n = epoll_wait(d->epfd, evs, max, 0);
		if (n < 0)
			return -errno;
		if (ret > 0 || n > 0) {
			d->st.poll_hits++;
			ps->last_work_us = dsmd_now_us(d);
		}
		return n;
	}
	ret = xport_arm(d->x);
	if (ret < 0)
		return ret;
	n = epoll_wait(d->epfd, evs, max, ret > 0 ? 0 : -1);
	if (n < 0)
		return -errno;
	if (ret == 0 && n > 0) {
		d->st.wakeups++;
		ps->last_work_us = dsmd_now_us(d);
	}
	return n;
}

int dsmd_run(struct dsmd *d)
{
	struct epoll_event evs[32];
	struct poll_state ps = {0};
	int n, i;

	cluster_start(d);
	/* Connection events may already be waiting. */
	xport_progress(d->x);
	while (!d->stop) {
		/* Messages to self, and completions that came in while we
		 * worked: handle them rather than sleep on an fd that will
		 * not fire for them. */
		while (node_run_self(d))
			;
		n = wait_events(d, &ps, evs, 32);
		if (n == -EINTR)
			continue;
		if (n < 0) {
			log_err("waiting for events: %s", strerror(-n));
			return n;
		}
		for (i = 0; i < n && !d->stop; i++) {
			struct watch *w = evs[i].data.ptr;

			w->fn(d, w, evs[i].events);
		}
	}
	return 0;
}
