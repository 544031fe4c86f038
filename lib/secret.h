/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef FLOWLENS_SECRET_H
#define FLOWLENS_SECRET_H

/*
 * Reads a bearer token file (a mounted Secret, a projected service account token): at most
 * 16 KiB, trailing newlines and spaces removed. malloc'd; NULL when unreadable.
 */
char *secret_read(const char *path);

#endif
