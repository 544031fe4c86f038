/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Leveled logging to stderr, shared by agent and collector. */
#ifndef FLOWLENS_LOG_H
#define FLOWLENS_LOG_H

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

extern enum log_level log_level;

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Routes libbpf's own messages through log_msg (warnings and above unless debug). */
void log_setup_libbpf(void);

#define LOG_AT(lvl, ...)                             \
	do {                                         \
		if ((lvl) <= log_level)              \
			log_msg((lvl), __VA_ARGS__); \
	} while (0)
#define pr_err(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define pr_warn(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define pr_info(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define pr_debug(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
