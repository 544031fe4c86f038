/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* uthash idioms written once: find-or-add, and emptying a table of plain elements. */
#ifndef FLOWLENS_HASHUTIL_H
#define FLOWLENS_HASHUTIL_H

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

/* Removes and frees every element of head (uthash's HASH_CLEAR forgets without freeing). */
#define HASH_FREE_ALL(hh, head)                     \
	do {                                        \
		__typeof__(head) el_, tmp_;         \
		HASH_ITER (hh, head, el_, tmp_) {   \
			HASH_DELETE(hh, head, el_); \
			free(el_);                  \
		}                                   \
	} while (0)

/*
 * out = the element of head whose keyfield equals the bytes at keyptr; when there is none, a
 * zeroed element with that key is added (out NULL when memory ran out).
 */
#define HASH_FIND_OR_ADD(hh, head, keyfield, keyptr, out)                           \
	do {                                                                        \
		HASH_FIND(hh, head, keyptr, sizeof((out)->keyfield), out);          \
		if (!(out) && ((out) = calloc(1, sizeof(*(out))))) {                \
			memcpy(&(out)->keyfield, keyptr, sizeof((out)->keyfield));  \
			HASH_ADD(hh, head, keyfield, sizeof((out)->keyfield), out); \
		}                                                                   \
	} while (0)

#endif
