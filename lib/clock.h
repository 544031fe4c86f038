/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The clocks every part of flowlens reads: CLOCK_MONOTONIC for intervals, deadlines and ages
 * (it never jumps), CLOCK_REALTIME only for times that leave the process (interval bounds on
 * the wire, log lines, Kubernetes timestamps). One definition, so a unit is never mixed up.
 */
#ifndef FLOWLENS_CLOCK_H
#define FLOWLENS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static inline uint64_t clock_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static inline uint64_t clock_mono_ms(void)
{
	return clock_ns(CLOCK_MONOTONIC) / 1000000ULL;
}

/* Milliseconds since the Unix epoch. */
static inline uint64_t clock_unix_ms(void)
{
	return clock_ns(CLOCK_REALTIME) / 1000000ULL;
}

/* An absolute deadline ms from now on clk, as pthread_cond_timedwait() takes it. */
static inline struct timespec clock_deadline_ms(clockid_t clk, uint64_t ms)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

#endif
