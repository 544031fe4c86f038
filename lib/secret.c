// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "secret.h"

int secret_bearer_ok(const char *authorization, const char *token, size_t len)
{
	const char *p;
	size_t n, i;
	unsigned char diff = 0;

	if (!authorization || !token || strncasecmp(authorization, "Bearer ", 7) != 0)
		return 0;
	p = authorization + 7;
	n = strlen(p);
	for (i = 0; i < len; i++)
		diff |= (unsigned char)(token[i] ^ (i < n ? p[i] : 0));
	return diff == 0 && n == len;
}

char *secret_read(const char *path)
{
	char buf[SECRET_MAX_LEN + 64];
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		n--;
	if (n > SECRET_MAX_LEN) {
		errno = EFBIG;
		return NULL;
	}
	if (n == 0) {
		errno = ENODATA;
		return NULL;
	}
	buf[n] = '\0';
	return strdup(buf);
}
