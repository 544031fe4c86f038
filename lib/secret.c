// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "secret.h"

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
