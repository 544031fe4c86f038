/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Configuration from flags and FLOWLENS_* environment variables, shared by agent and collector.
 *
 * A program declares its options as one table (struct opt_def: flag, environment variable,
 * type, default, bounds, help) and opts_parse() does the rest the same way for every binary:
 * defaults (parsed from their text by the same parser as any value), then the environment,
 * then the command line, each value checked strictly; --help is generated from the table.
 */
#ifndef FLOWLENS_OPTPARSE_H
#define FLOWLENS_OPTPARSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* "250ms", "10s", "2m", "1h" or a bare number of seconds, > 0. Returns 0 or -EINVAL. */
int opt_parse_duration(const char *s, uint64_t *ms);
/* A decimal integer in [min, max], nothing else. Returns 0 or -EINVAL. */
int opt_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* "HOST:PORT" (":PORT" means 0.0.0.0; IPv6 as "[::1]:PORT"). Returns 0 or -EINVAL. */
int opt_parse_listen(const char *s, char *host, size_t host_size, int *port);

/* Default histogram bounds (seconds): 100 us to 30 s. The SLO generator checks latency
 * thresholds against them, so they are shared. */
#define OPT_DEFAULT_BUCKETS \
	"0.0001,0.00025,0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5,5,10,30"
/* Increasing positive bucket bounds "0.1,0.25,1"; returns the count or -EINVAL/-ENOMEM. */
int opt_parse_buckets(const char *s, double *out, unsigned int max);

enum opt_kind {
	OPT_STR, /* char *, strdup'd (freed by opts_free) */
	OPT_U64, /* uint64_t in [min, max] */
	OPT_U32, /* uint32_t in [min, max] */
	OPT_U16, /* uint16_t in [min, max] */
	OPT_DURATION, /* uint64_t milliseconds in [min, max] (max 0: no bound) */
	OPT_BOOL, /* int; the flag takes no value, the variable 1/0/true/false/yes/no */
	OPT_CHOICE, /* int: the value of the matching name in choices */
	OPT_LISTEN, /* char[OPT_HOST_MAX] at offset, int port at offset2 */
	OPT_BUCKETS, /* double[OPT_BUCKETS_MAX] at offset, unsigned int count at offset2 */
	OPT_GLOBS, /* char *[OPT_GLOBS_MAX] at offset, int count at offset2 (interface names) */
	OPT_NAMES, /* as OPT_GLOBS, each up to OPT_NAME_MAX - 1 characters */
	OPT_FUNC, /* parse(options, value) */
};

#define OPT_HOST_MAX 64
#define OPT_BUCKETS_MAX 32
#define OPT_GLOBS_MAX 16
#define OPT_NAME_MAX 32 /* ETH_GSTRING_LEN */

/* flags */
#define OPT_ZERO_OK 0x1 /* OPT_DURATION: "0" is allowed (disables) */
#define OPT_POW2 0x2 /* integers: a power of two */

struct opt_choice {
	const char *name;
	int value;
};

/* --log-level: error, warn, info, debug (enum log_level). */
extern const struct opt_choice opt_log_levels[];

struct opt_def {
	const char *name; /* --name; NULL: a section heading (help) in the usage text */
	int short_flag; /* 'x' for -x, or 0 */
	const char *env; /* FLOWLENS_... */
	enum opt_kind kind;
	size_t offset, offset2; /* of the field(s) in the options struct */
	const char *def; /* default as text; NULL: none */
	const char *def_shown; /* the default as the usage text shows it, when def is long */
	uint64_t min, max;
	unsigned int flags;
	const struct opt_choice *choices; /* OPT_CHOICE, ended by a NULL name */
	int (*parse)(void *opts, const char *val); /* OPT_FUNC: 0 or -EINVAL */
	const char *arg; /* the value's name in the usage text ("DURATION") */
	const char *help;
};

struct opt_program {
	const char *name; /* "flowlens-agent" */
	const char *synopsis; /* after the name: "[OPTIONS]" */
	const char *about; /* what the program does, a paragraph */
	const char *examples;
	const struct opt_def *defs;
	size_t n_defs;
};

/*
 * Fills opts (zeroed first) from the defaults, the environment, then argv. Returns 0 to run,
 * 1 when the program should exit successfully (--help, --version), or -EINVAL after printing
 * why to stderr, naming the flag or variable and its value.
 */
int opts_parse(const struct opt_program *p, void *opts, int argc, char **argv);
void opts_usage(const struct opt_program *p, FILE *f);
/* The name of value in a choice list, or "?". */
const char *opt_choice_name(const struct opt_choice *c, int value);
/* Frees what opts_parse allocated (strings, globs). */
void opts_free(const struct opt_program *p, void *opts);

#endif
