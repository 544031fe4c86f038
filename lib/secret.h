/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef FLOWLENS_SECRET_H
#define FLOWLENS_SECRET_H

/* The longest bearer token agent and collector take (both refuse longer ones alike). */
#define SECRET_MAX_LEN 4096

/*
 * Reads a bearer token file (a mounted Secret, a projected service account token), trailing
 * newlines and spaces removed. malloc'd; NULL with errno set when unreadable (fopen's errno),
 * longer than SECRET_MAX_LEN (EFBIG) or empty (ENODATA).
 */
char *secret_read(const char *path);

#endif
