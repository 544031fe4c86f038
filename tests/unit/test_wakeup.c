// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The samples ring buffer wakes the agent when the data waiting crosses the agent's threshold
 * (samples_wakeup_bytes), and a sample past that point sends no wakeup of its own: each one is
 * an irq_work, a self-IPI that traps on a VM (a DNS storm paid 18-20% of its per-packet cost
 * for them, docs/benchmarks.md). Ground truths: an epoll waiter on the ring, asleep until a
 * wakeup comes, and the kernel's own count of IRQ work interrupts (/proc/interrupts "IWI").
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "check.h"
#include "bpf_env.h"

#define WAKEUP_BYTES 65536
#define RECORD_BYTES (sizeof(struct fl_sample) + 8) /* a ring buffer record's header is 8 */

struct waiter {
	int ep;
	volatile pid_t tid;
	volatile int woke;
};

static void *wait_ring(void *arg)
{
	struct waiter *w = arg;
	struct epoll_event ev;

	w->tid = (pid_t)syscall(SYS_gettid);
	w->woke = epoll_wait(w->ep, &ev, 1, 10000) > 0 ? 1 : -1;
	return NULL;
}

/*
 * Whether thread tid is asleep (state S) in epoll_wait. Only a sleeping waiter tells a
 * wakeup from none: one that calls epoll_wait after data arrived returns at once (the ring
 * polls level-triggered).
 */
static int asleep_in_epoll(pid_t tid)
{
	char path[64], buf[512], *p;
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	p = fgets(buf, sizeof(buf), f) ? strrchr(buf, ')') : NULL;
	fclose(f);
	if (!p || p[1] != ' ' || p[2] != 'S')
		return 0;
	snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", (int)tid);
	f = fopen(path, "r");
	if (!f) /* no CONFIG_HAVE_ARCH_TRACEHOOK: sleeping is all that can be seen */
		return 1;
	if (fscanf(f, "%ld", &nr) != 1)
		nr = -1;
	fclose(f);
#ifdef SYS_epoll_wait
	if (nr == SYS_epoll_wait)
		return 1;
#endif
	return nr == SYS_epoll_pwait;
}

/*
 * IRQ work interrupts so far, all CPUs; -1 where the kernel lists none. x86 names the line
 * "IWI:", arm64 "IPI<n>:" with the text "IRQ work interrupts": the text is what is matched.
 */
static long long irq_work_interrupts(void)
{
	char line[4096];
	long long sum = -1;
	FILE *f = fopen("/proc/interrupts", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ':'), *end;

		if (!p || !strstr(line, "IRQ work interrupts"))
			continue;
		sum = 0;
		for (p++;; p = end) {
			long long v = strtoll(p, &end, 10);

			if (end == p)
				break;
			sum += v;
		}
	}
	fclose(f);
	return sum;
}

/* n DNS exchanges, one sample each. */
static void samples(struct env *e, int n)
{
	int len;

	for (int i = 0; i < n; i++) {
		run(e->prog_in, &dns_query, &len);
		run(e->prog_eg, &dns_answer, &len);
	}
}

void test_wakeup(void)
{
	struct waiter w = { .ep = -1 };
	struct epoll_event ev = { .events = EPOLLIN };
	int below = WAKEUP_BYTES / (int)RECORD_BYTES - 10;
	struct env e;
	pthread_t th;
	long long iwi0, iwi1;
	int running = 0;

	if (env_open_wakeup(&e, 1024, WAKEUP_BYTES)) {
		CHECK(0, "load with a wake-up threshold");
		return;
	}
	w.ep = epoll_create1(0);
	ev.data.fd = bpf_map__fd(e.skel->maps.samples);
	if (w.ep < 0 || epoll_ctl(w.ep, EPOLL_CTL_ADD, ev.data.fd, &ev) != 0) {
		CHECK(0, "epoll on the samples ring: %s", strerror(errno));
		goto out;
	}
	running = pthread_create(&th, NULL, wait_ring, &w) == 0;
	if (!running) {
		CHECK(0, "waiter thread");
		goto out;
	}
	for (int i = 0; i < 500 && !(w.tid && asleep_in_epoll(w.tid)); i++)
		usleep(10 * 1000);
	CHECK(w.tid && asleep_in_epoll(w.tid), "the waiter is asleep in epoll_wait");

	/* Below the threshold: the samples wait for the agent's next drain. */
	samples(&e, below);
	usleep(300 * 1000);
	CHECK(w.woke == 0, "%d samples (%d bytes, threshold %d): nobody woken", below,
	      below * (int)RECORD_BYTES, WAKEUP_BYTES);

	/* Crossing it wakes the agent. */
	samples(&e, 20);
	pthread_join(th, NULL);
	running = 0;
	CHECK(w.woke == 1, "the sample crossing the threshold woke the waiter (%d)", w.woke);

	/* The agent is busy (nobody consumes): later samples send no wakeups. */
	iwi0 = irq_work_interrupts();
	samples(&e, 2000);
	iwi1 = irq_work_interrupts();
	/* Every kernel the agent supports counts IRQ work (x86 and arm64): a missing line is a
	 * failure, not a skip. */
	CHECK(iwi0 >= 0, "/proc/interrupts lists IRQ work interrupts");
	if (iwi0 >= 0)
		CHECK(iwi1 - iwi0 < 200,
		      "2000 samples past the threshold: %lld IRQ work interrupts (one each before)",
		      iwi1 - iwi0);
out:
	if (running)
		pthread_join(th, NULL);
	if (w.ep >= 0)
		close(w.ep);
	flow_bpf__destroy(e.skel);
}
