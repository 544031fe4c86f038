// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include "persist.h"
#include "wire.h"

/* A log record: length, CRC-32 of the body, the compressed batch body as received. */
struct wal_hdr {
	uint32_t len;
	uint32_t crc;
	uint64_t unix_ms; /* when it was applied: replay re-creates series with their age */
};

static uint64_t unix_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct persist {
	char dir[PATH_MAX - 32];
	int wal_fd;
	int sync;
};

static void path_in(const struct persist *p, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", p->dir, name);
}

int persist_open(struct persist **out, const char *dir, int sync)
{
	struct persist *p = calloc(1, sizeof(*p));
	char path[PATH_MAX];

	if (!p)
		return -ENOMEM;
	snprintf(p->dir, sizeof(p->dir), "%s", dir);
	p->sync = sync;
	path_in(p, "wal", path, sizeof(path));
	p->wal_fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (p->wal_fd == -1) {
		int err = -errno;

		free(p);
		return err;
	}
	*out = p;
	return 0;
}

int persist_load(struct persist *p, struct store *s, size_t max_decompressed, uint64_t now_ms,
		 uint64_t *replayed)
{
	char path[PATH_MAX];
	struct wal_hdr h;
	uint8_t *buf = NULL;
	off_t good = 0;
	FILE *f;
	int err = 0;

	*replayed = 0;
	path_in(p, "snapshot", path, sizeof(path));
	f = fopen(path, "rb");
	if (f) {
		err = store_restore(s, f, now_ms, unix_now_ms());
		fclose(f);
		if (err)
			return err;
	} else if (errno != ENOENT) {
		return -errno;
	}

	/* Replay the log; a torn last record (a crash mid-write) ends it. */
	if (lseek(p->wal_fd, 0, SEEK_SET) == -1)
		return -errno;
	for (;;) {
		struct wire_batch wb;
		const char *why;
		ssize_t n = read(p->wal_fd, &h, sizeof(h));

		if (n != (ssize_t)sizeof(h) || h.len == 0 || h.len > max_decompressed)
			break;
		buf = realloc(buf, h.len);
		if (!buf)
			return -ENOMEM;
		if (read(p->wal_fd, buf, h.len) != (ssize_t)h.len ||
		    (uint32_t)crc32(0, buf, h.len) != h.crc)
			break;
		if (wire_decode(buf, h.len, max_decompressed, &wb, &why) == WIRE_OK) {
			if (store_apply(s, wb.b,
					store_mono_of_unix(now_ms, unix_now_ms(), h.unix_ms)) ==
			    STORE_APPLIED)
				(*replayed)++;
			wire_free(&wb);
		}
		good += (off_t)(sizeof(h) + h.len);
	}
	free(buf);
	if (ftruncate(p->wal_fd, good) == -1)
		return -errno;
	return 0;
}

int persist_append(struct persist *p, const uint8_t *body, size_t len)
{
	struct wal_hdr h = { .len = (uint32_t)len,
			     .crc = (uint32_t)crc32(0, body, (uInt)len),
			     .unix_ms = unix_now_ms() };
	uint8_t *rec = malloc(sizeof(h) + len);
	ssize_t n;

	if (!rec)
		return -ENOMEM;
	/* One write, so that a record is either whole or a detectable torn tail. */
	memcpy(rec, &h, sizeof(h));
	memcpy(rec + sizeof(h), body, len);
	n = write(p->wal_fd, rec, sizeof(h) + len);
	free(rec);
	if (n != (ssize_t)(sizeof(h) + len))
		return n == -1 ? -errno : -EIO;
	if (p->sync && fdatasync(p->wal_fd) == -1)
		return -errno;
	return 0;
}

int persist_snapshot(struct persist *p, struct store *s, uint64_t now_ms)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	FILE *f;
	int err, dfd;

	path_in(p, "snapshot.tmp", tmp, sizeof(tmp));
	path_in(p, "snapshot", path, sizeof(path));
	dfd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f = dfd >= 0 ? fdopen(dfd, "wb") : NULL;
	if (!f) {
		err = -errno;
		if (dfd >= 0)
			close(dfd);
		return err;
	}
	err = store_save(s, f, now_ms, unix_now_ms());
	if (!err && fflush(f) != 0)
		err = -errno;
	if (!err && fsync(fileno(f)) == -1)
		err = -errno;
	if (fclose(f) != 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) == -1)
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	/* Everything in the log is in the snapshot now. */
	if (ftruncate(p->wal_fd, 0) == -1)
		return -errno;
	return 0;
}

void persist_close(struct persist *p)
{
	if (!p)
		return;
	close(p->wal_fd);
	free(p);
}
