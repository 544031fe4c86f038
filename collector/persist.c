// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <zlib.h>
#include "clock.h"
#include "log.h"
#include "persist.h"
#include "wire.h"

/*
 * A log record: this header, then the compressed batch body as received. The magic lets a
 * scan find the next record after damage; the header has its own CRC so that a flipped
 * length cannot send the scan astray.
 */
#define WAL_MAGIC 0x324c5746u /* "FWL2" */

struct wal_hdr {
	uint32_t magic;
	uint32_t len;
	uint64_t unix_ms; /* when it was applied: replay re-creates series with their age */
	uint32_t body_crc;
	uint32_t hdr_crc; /* CRC-32 of the fields above */
};
_Static_assert(sizeof(struct wal_hdr) == 24, "wal_hdr layout");

struct persist {
	char dir[PATH_MAX - 64];
	int wal_fd;
	int sync;
	off_t size; /* end of the last durable record */
	int broken; /* a failed append could not be undone: refuse until a snapshot */
};

static void path_in(const struct persist *p, const char *name, char *out, size_t size)
{
	snprintf(out, size, "%s/%s", p->dir, name);
}

static uint32_t hdr_crc(const struct wal_hdr *h)
{
	return (uint32_t)crc32(0, (const Bytef *)h, offsetof(struct wal_hdr, hdr_crc));
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
	p->wal_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (p->wal_fd == -1) {
		int err = -errno;

		free(p);
		return err;
	}
	p->size = lseek(p->wal_fd, 0, SEEK_END);
	if (p->size == -1) {
		int err = -errno;

		close(p->wal_fd);
		free(p);
		return err;
	}
	*out = p;
	return 0;
}

/* The record at off if it is whole and intact; its total length, or 0. */
static size_t record_at(const uint8_t *m, size_t size, size_t off, size_t max_len,
			struct wal_hdr *h)
{
	if (size - off < sizeof(*h))
		return 0;
	memcpy(h, m + off, sizeof(*h));
	if (h->magic != WAL_MAGIC || h->hdr_crc != hdr_crc(h) || h->len == 0 || h->len > max_len ||
	    size - off - sizeof(*h) < h->len)
		return 0;
	if ((uint32_t)crc32(0, m + off + sizeof(*h), h->len) != h->body_crc)
		return 0;
	return sizeof(*h) + h->len;
}

static int replay(struct persist *p, struct store *s, size_t max_decompressed, uint64_t now_ms,
		  struct persist_load_stats *st)
{
	struct stat sb;
	const uint8_t *m;
	size_t size, off = 0, end = 0;

	if (fstat(p->wal_fd, &sb) == -1)
		return -errno;
	size = (size_t)sb.st_size;
	if (size == 0)
		return 0;
	m = mmap(NULL, size, PROT_READ, MAP_PRIVATE, p->wal_fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	while (off < size) {
		struct wal_hdr h;
		struct wire_batch wb;
		const char *why;
		size_t n = record_at(m, size, off, max_decompressed, &h), skip;

		if (n) {
			if (wire_decode(m + off + sizeof(h), h.len, max_decompressed, &wb, &why) ==
			    WIRE_OK) {
				uint64_t when =
					store_mono_of_unix(now_ms, clock_unix_ms(), h.unix_ms);

				/*
				 * What the live process did by the clock (waits that ran out,
				 * connections then named direct) happens in the same order here.
				 */
				store_tick(s, when);
				if (store_apply(s, wb.b, when) == STORE_APPLIED)
					st->replayed++;
				else
					st->duplicates++;
				wire_free(&wb);
			}
			off += n;
			end = off;
			continue;
		}
		/* Damage (or a torn tail): resume at the next intact record, if any. */
		for (skip = off + 1; skip < size; skip++) {
			const uint8_t *q = memchr(m + skip, WAL_MAGIC & 0xff, size - skip);

			if (!q) {
				skip = size;
				break;
			}
			skip = (size_t)(q - m);
			if (record_at(m, size, skip, max_decompressed, &h))
				break;
		}
		st->corrupt_records++;
		st->corrupt_bytes += skip - off;
		off = skip;
	}
	munmap((void *)m, size);
	/* A damaged tail is cut, so new records follow the last intact one. */
	if (end < size) {
		if (ftruncate(p->wal_fd, (off_t)end) == -1)
			return -errno;
	}
	p->size = (off_t)end;
	return 0;
}

int persist_load(struct persist *p, struct store **s, const struct store_config *cfg,
		 size_t max_decompressed, uint64_t now_ms, struct persist_load_stats *st)
{
	char path[PATH_MAX], aside[PATH_MAX + 32];
	FILE *f;
	int err;

	memset(st, 0, sizeof(*st));
	path_in(p, "snapshot", path, sizeof(path));
	f = fopen(path, "rb");
	if (f) {
		struct stat sb;
		uint64_t saved = clock_unix_ms();

		if (fstat(fileno(f), &sb) == 0)
			saved = (uint64_t)sb.st_mtim.tv_sec * 1000 +
				(uint64_t)sb.st_mtim.tv_nsec / 1000000;
		err = store_restore(*s, f, now_ms, clock_unix_ms(), saved);
		fclose(f);
		if (err == -ENOMEM)
			return err;
		if (err) {
			/* Never a crash loop: keep the evidence, start over from the log. */
			snprintf(aside, sizeof(aside), "%s.corrupt-%llu", path,
				 (unsigned long long)(clock_unix_ms() / 1000));
			if (rename(path, aside) == -1)
				return -errno;
			pr_err("state: snapshot %s is damaged (%s): moved to %s; counters restart "
			       "from the log alone (Prometheus sees a reset)",
			       path, strerror(-err), aside);
			st->snapshot_corrupt = 1;
			store_free(*s);
			*s = NULL;
			err = store_new(s, cfg);
			if (err)
				return err;
		}
	} else if (errno != ENOENT) {
		return -errno;
	}
	err = replay(p, *s, max_decompressed, now_ms, st);
	if (err)
		return err;
	if (st->corrupt_records)
		pr_err("state: %llu damaged stretch(es) of the log (%llu bytes) skipped; every intact "
		       "record was replayed",
		       (unsigned long long)st->corrupt_records,
		       (unsigned long long)st->corrupt_bytes);
	return 0;
}

int persist_broken(const struct persist *p)
{
	return p->broken;
}

int persist_append(struct persist *p, const uint8_t *body, size_t len)
{
	struct wal_hdr h = { .magic = WAL_MAGIC,
			     .len = (uint32_t)len,
			     .unix_ms = clock_unix_ms(),
			     .body_crc = (uint32_t)crc32(0, body, (uInt)len) };
	struct iovec iov[2];
	ssize_t n;
	int err;

	if (p->broken)
		return -EIO;
	h.hdr_crc = hdr_crc(&h);
	iov[0] = (struct iovec){ .iov_base = &h, .iov_len = sizeof(h) };
	iov[1] = (struct iovec){ .iov_base = (void *)body, .iov_len = len };
	n = pwritev(p->wal_fd, iov, 2, p->size);
	if (n == (ssize_t)(sizeof(h) + len) && (!p->sync || fdatasync(p->wal_fd) == 0)) {
		p->size += n;
		return 0;
	}
	err = n == -1 || n == (ssize_t)(sizeof(h) + len) ? -errno : -ENOSPC;
	/*
	 * Nothing of a failed record may stay (replay would skip it, but the agent retries it
	 * and it must then be the only copy). After a failed fdatasync the file's state is
	 * unknown: refuse until a snapshot has rewritten everything.
	 */
	if (ftruncate(p->wal_fd, p->size) == -1 || n == (ssize_t)(sizeof(h) + len))
		p->broken = 1;
	return err ? err : -EIO;
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
	err = store_save(s, f, now_ms, clock_unix_ms());
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
	p->size = 0;
	p->broken = 0;
	return 0;
}

void persist_close(struct persist *p)
{
	if (!p)
		return;
	close(p->wal_fd);
	free(p);
}
