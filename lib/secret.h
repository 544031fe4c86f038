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

/*
 * Whether an Authorization header value presents token (len bytes) as a bearer token. The
 * scheme is case-insensitive (RFC 9110 11.1); the comparison takes the same time wherever the
 * first difference is.
 */
int secret_bearer_ok(const char *authorization, const char *token, size_t len);

#endif
