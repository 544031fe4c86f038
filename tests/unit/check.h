/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The assertion the C tests use: counts checks and failures, never stops at the first. */
#ifndef FLOWLENS_TEST_CHECK_H
#define FLOWLENS_TEST_CHECK_H

#include <stdio.h>

/* One test binary's counters: its main file defines CHECK_MAIN before including this. */
#ifdef CHECK_MAIN
int failures;
int checks;
#else
extern int failures;
extern int checks;
#endif

#define CHECK(cond, ...)                                                                \
	do {                                                                            \
		checks++;                                                               \
		if (!(cond)) {                                                          \
			failures++;                                                     \
			fprintf(stderr, "FAIL %s:%d: %s: ", __func__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                   \
			fputc('\n', stderr);                                            \
		}                                                                       \
	} while (0)

#endif
