/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * .npy reader and writer. The header is a Python dict literal; the parser
 * accepts exactly what numpy's format.py writes (any key order, either quote
 * style, optional trailing commas, Python 2 'L' suffixes) and nothing else.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "djinn/common.h"
#include "djinn/npy.h"
#include "common/djc.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};
#define PREFIX_V1 10 /* magic, version, uint16 header length */
#define PREFIX_V2 12 /* magic, version, uint32 header length */
#define DATA_ALIGN 64

/* "npy: message" into the caller's buffer, through common's formatter. */
#define npy_fail(rc, err, errlen, ...) djc_errf((rc), (err), (errlen), "npy", __VA_ARGS__)

static const struct {
	const char *descr;
	enum dj_dtype dtype;
} descr_table[] = {
	{"<f4", DJ_DTYPE_FLOAT32},
	{"<f2", DJ_DTYPE_FLOAT16},
	{"<i4", DJ_DTYPE_INT32},
	{"<i8", DJ_DTYPE_INT64},
	{"<u2", DJ_DTYPE_BFLOAT16}, /* only with DJ_NPY_U2_AS_BF16 */
};

static const char *descr_of(enum dj_dtype t)
{
	for (size_t i = 0; i < sizeof(descr_table) / sizeof(descr_table[0]); i++)
		if (descr_table[i].dtype == t)
			return descr_table[i].descr;
	return NULL;
}

/* ---- header parser ---- */

struct cursor {
	const char *p, *end;
	char *err;
	size_t errlen;
	int from_f64; /* '<f8' data read as float32 (DJ_NPY_F64_TO_F32) */
};

static void skip_space(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
		c->p++;
}

/* Consume @p ch after optional spaces; 1 if it was there. */
static int accept(struct cursor *c, char ch)
{
	skip_space(c);
	if (c->p < c->end && *c->p == ch) {
		c->p++;
		return 1;
	}
	return 0;
}

static int malformed(struct cursor *c, const char *what)
{
	return npy_fail(-EINVAL, c->err, c->errlen, "malformed header: %s", what);
}

/* A quoted string without escapes (numpy never writes any). */
static int parse_string(struct cursor *c, char *out, size_t cap)
{
	skip_space(c);
	if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
		return malformed(c, "expected a quoted string");
	char quote = *c->p++;
	size_t n = 0;

	while (c->p < c->end && *c->p != quote) {
		if (*c->p == '\\' || n + 1 >= cap)
			return malformed(c, "unexpected string");
		out[n++] = *c->p++;
	}
	if (c->p >= c->end)
		return malformed(c, "unterminated string");
	c->p++;
	out[n] = '\0';
	return 0;
}

static int parse_bool(struct cursor *c, int *value)
{
	skip_space(c);
	size_t left = (size_t)(c->end - c->p);

	if (left >= 4 && memcmp(c->p, "True", 4) == 0) {
		c->p += 4;
		*value = 1;
		return 0;
	}
	if (left >= 5 && memcmp(c->p, "False", 5) == 0) {
		c->p += 5;
		*value = 0;
		return 0;
	}
	return malformed(c, "fortran_order must be True or False");
}

static int parse_dim(struct cursor *c, int64_t *value)
{
	int64_t v = 0;
	int digits = 0;

	skip_space(c);
	while (c->p < c->end && isdigit((unsigned char)*c->p)) {
		if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *c->p - '0', &v))
			return npy_fail(-DJ_ESHAPE, c->err, c->errlen, "shape dimension overflows");
		c->p++;
		digits++;
	}
	if (digits == 0)
		return malformed(c, "shape entries must be non-negative integers");
	if (c->p < c->end && *c->p == 'L') /* Python 2 long */
		c->p++;
	*value = v;
	return 0;
}

/* "()" or "(n,)" or "(a, b, ...)" with an optional trailing comma. */
static int parse_shape(struct cursor *c, struct dj_tensor_desc *d)
{
	if (!accept(c, '('))
		return malformed(c, "shape must be a tuple");
	d->ndim = 0;
	if (accept(c, ')'))
		return 0;
	for (;;) {
		if (d->ndim == DJ_MAX_DIMS)
			return npy_fail(-DJ_ESHAPE, c->err, c->errlen,
					"more than %d dimensions", DJ_MAX_DIMS);
		int rc = parse_dim(c, &d->shape[d->ndim++]);

		if (rc != 0)
			return rc;
		if (accept(c, ')'))
			return d->ndim == 1 ? malformed(c, "1-tuple without a comma") : 0;
		if (!accept(c, ','))
			return malformed(c, "expected ',' or ')' in shape");
		if (accept(c, ')'))
			return 0;
	}
}

static int dtype_from_descr(struct cursor *c, const char *descr, unsigned int flags,
			    enum dj_dtype *dtype)
{
	for (size_t i = 0; i < sizeof(descr_table) / sizeof(descr_table[0]); i++) {
		if (strcmp(descr, descr_table[i].descr) != 0)
			continue;
		if (descr_table[i].dtype == DJ_DTYPE_BFLOAT16 && !(flags & DJ_NPY_U2_AS_BF16))
			return npy_fail(-DJ_EDTYPE, c->err, c->errlen,
					"'<u2' (uint16) is not a Djinn dtype; read it with the "
					"bfloat16 option if it holds bfloat16 bits");
		*dtype = descr_table[i].dtype;
		return 0;
	}
	if (descr[0] == '>')
		return npy_fail(-DJ_EDTYPE, c->err, c->errlen,
				"big-endian data '%s' not supported: use a.astype(a.dtype.newbyteorder('<'))",
				descr);
	if (strcmp(descr, "<f8") == 0 && (flags & DJ_NPY_F64_TO_F32)) {
		*dtype = DJ_DTYPE_FLOAT32;
		c->from_f64 = 1;
		return 0;
	}
	if (strcmp(descr, "<f8") == 0)
		return npy_fail(-DJ_EDTYPE, c->err, c->errlen,
				"float64 ('<f8') not supported: use a.astype(np.float32) "
				"(or load with the float64-to-float32 option)");
	return npy_fail(-DJ_EDTYPE, c->err, c->errlen,
			"dtype '%s' not supported (float32, float16, int32, int64; "
			"bfloat16 as '<u2')", descr);
}

enum { KEY_DESCR = 1, KEY_FORTRAN = 2, KEY_SHAPE = 4 };

static int parse_entry(struct cursor *c, unsigned int flags, unsigned int *seen,
		       struct dj_tensor_desc *d)
{
	char key[32], descr[32];
	int fortran = 0, rc;

	rc = parse_string(c, key, sizeof(key));
	if (rc != 0)
		return rc;
	if (!accept(c, ':'))
		return malformed(c, "expected ':' after a key");
	unsigned int bit = !strcmp(key, "descr") ? KEY_DESCR
			 : !strcmp(key, "fortran_order") ? KEY_FORTRAN
			 : !strcmp(key, "shape") ? KEY_SHAPE : 0;

	if (bit == 0)
		return npy_fail(-EINVAL, c->err, c->errlen, "unknown header key '%s'", key);
	if (*seen & bit)
		return npy_fail(-EINVAL, c->err, c->errlen, "header key '%s' repeated", key);
	*seen |= bit;
	if (bit == KEY_SHAPE)
		return parse_shape(c, d);
	if (bit == KEY_FORTRAN) {
		rc = parse_bool(c, &fortran);
		if (rc == 0 && fortran)
			return npy_fail(-EINVAL, c->err, c->errlen,
					"fortran_order True not supported: save with "
					"np.ascontiguousarray(a)");
		return rc;
	}
	rc = parse_string(c, descr, sizeof(descr));
	return rc != 0 ? rc : dtype_from_descr(c, descr, flags, &d->dtype);
}

static int parse_dict(struct cursor *c, unsigned int flags, struct dj_tensor_desc *d)
{
	unsigned int seen = 0;

	if (!accept(c, '{'))
		return malformed(c, "expected '{'");
	while (!accept(c, '}')) {
		int rc = parse_entry(c, flags, &seen, d);

		if (rc != 0)
			return rc;
		if (!accept(c, ',')) {
			if (!accept(c, '}'))
				return malformed(c, "expected ',' or '}'");
			break;
		}
	}
	if (seen != (KEY_DESCR | KEY_FORTRAN | KEY_SHAPE))
		return npy_fail(-EINVAL, c->err, c->errlen,
				"header lacks '%s'", !(seen & KEY_DESCR) ? "descr"
						     : !(seen & KEY_FORTRAN) ? "fortran_order"
									     : "shape");
	/* Padding: spaces (numpy also tolerates none), then one newline. */
	skip_space(c);
	if (c->p + 1 != c->end || *c->p != '\n')
		return malformed(c, "trailing characters after the dict");
	return 0;
}

static uint32_t read_le(const unsigned char *p, int bytes)
{
	uint32_t v = 0;

	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Magic and version; the total header size (prefix + dict). */
static int parse_prefix(const unsigned char *b, size_t len, size_t *prefix, size_t *total,
			char *err, size_t errlen)
{
	if (len < PREFIX_V1 || memcmp(b, npy_magic, sizeof(npy_magic)) != 0)
		return npy_fail(-EINVAL, err, errlen, "not an .npy file (bad magic)");
	if (b[6] < 1 || b[6] > 3 || b[7] != 0)
		return npy_fail(-EINVAL, err, errlen, "unsupported format version %u.%u", b[6],
				b[7]);
	*prefix = b[6] == 1 ? PREFIX_V1 : PREFIX_V2;
	if (len < *prefix)
		return npy_fail(-EINVAL, err, errlen, "truncated header");
	uint32_t hlen = read_le(b + 8, b[6] == 1 ? 2 : 4);

	if (hlen > DJ_NPY_MAX_HEADER)
		return npy_fail(-EINVAL, err, errlen, "header of %u bytes is too large", hlen);
	*total = *prefix + hlen;
	return 0;
}

/* Where and how the data of a parsed file lies. */
struct npy_layout {
	struct dj_tensor_desc desc; /* the tensor as loaded */
	size_t offset;              /* first data byte in the file */
	size_t src_elem;            /* bytes per element in the file */
};

static int parse_layout(const void *buf, size_t len, unsigned int flags, struct npy_layout *l,
			char *err, size_t errlen)
{
	size_t prefix, total;
	int rc = parse_prefix(buf, len, &prefix, &total, err, errlen);

	if (rc != 0)
		return rc;
	if (total > len)
		return npy_fail(-EINVAL, err, errlen, "truncated header");
	struct cursor c = {.p = (const char *)buf + prefix, .end = (const char *)buf + total,
			   .err = err, .errlen = errlen};
	struct dj_tensor_desc d = {0};

	rc = parse_dict(&c, flags, &d);
	if (rc == 0 && (dj_tensor_desc_check(&d) != 0 ||
			(c.from_f64 && dj_tensor_numel(&d) > INT64_MAX / 8)))
		return npy_fail(-DJ_ESHAPE, err, errlen, "shape too large");
	if (rc == 0) {
		l->desc = d;
		l->offset = total;
		l->src_elem = c.from_f64 ? sizeof(double) : dj_dtype_size(d.dtype);
	}
	return rc;
}

int dj_npy_parse_header(const void *buf, size_t len, unsigned int flags,
			struct dj_tensor_desc *desc, size_t *data_offset,
			char *err, size_t errlen)
{
	struct npy_layout l;
	/* The description must match the bytes in the file: no conversion. */
	int rc = parse_layout(buf, len, flags & ~DJ_NPY_F64_TO_F32, &l, err, errlen);

	if (rc == 0) {
		*desc = l.desc;
		*data_offset = l.offset;
	}
	return rc;
}

/* ---- writer ---- */

int dj_npy_format_header(const struct dj_tensor_desc *desc, char *buf, size_t cap, size_t *len)
{
	char dict[64 + DJ_MAX_DIMS * 24];
	const char *descr = descr_of(desc->dtype);
	int n;

	if (descr == NULL || dj_tensor_desc_check(desc) != 0)
		return -EINVAL;
	n = snprintf(dict, sizeof(dict), "{'descr': '%s', 'fortran_order': False, 'shape': (",
		     descr);
	for (int i = 0; i < desc->ndim; i++)
		n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%s%lld", i ? ", " : "",
			      (long long)desc->shape[i]);
	n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%s), }", desc->ndim == 1 ? "," : "");
	/* numpy leaves room for the first dimension to grow to 21 digits so an
	 * array can be appended to in place; do the same so our files are
	 * byte-identical to np.save's. */
	if (desc->ndim > 0) {
		int digits = snprintf(NULL, 0, "%lld", (long long)desc->shape[0]);

		n += snprintf(dict + n, sizeof(dict) - (size_t)n, "%*s", 21 - digits, "");
	}
	/* The dict is short, so version 1.0 (16-bit length) always fits. */
	size_t total = PREFIX_V1 + (size_t)n + 1;

	total = (total + DATA_ALIGN - 1) / DATA_ALIGN * DATA_ALIGN;
	if (cap < total)
		return -ENOSPC;
	memcpy(buf, npy_magic, sizeof(npy_magic));
	buf[6] = 1;
	buf[7] = 0;
	buf[8] = (char)((total - PREFIX_V1) & 0xff);
	buf[9] = (char)((total - PREFIX_V1) >> 8);
	memcpy(buf + PREFIX_V1, dict, (size_t)n);
	memset(buf + PREFIX_V1 + n, ' ', total - PREFIX_V1 - (size_t)n - 1);
	buf[total - 1] = '\n';
	*len = total;
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int dj_npy_save(const char *path, const struct dj_tensor *t, char *err, size_t errlen)
{
	char header[256 + DJ_MAX_DIMS * 24];
	size_t hlen;

	if (t == NULL || t->mem != DJ_MEM_HOST ||
	    dj_npy_format_header(&t->desc, header, sizeof(header), &hlen) != 0)
		return npy_fail(-EINVAL, err, errlen, "not a valid host tensor");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0)
		return npy_fail(-errno, err, errlen, "%s: %s", path, dj_strerror(-errno));
	int rc = write_all(fd, header, hlen);

	if (rc == 0)
		rc = write_all(fd, t->data, dj_tensor_nbytes(&t->desc));
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc != 0) {
		unlink(path);
		return npy_fail(rc, err, errlen, "%s: %s", path, dj_strerror(rc));
	}
	return 0;
}

/* ---- loading ---- */

/* float64 -> float32, round to nearest even; unaligned little-endian source. */
static void narrow_f64(const void *src, float *dst, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		double v;

		memcpy(&v, (const char *)src + i * (int64_t)sizeof(v), sizeof(v));
		dst[i] = (float)v;
	}
}

/* Allocate the tensor after checking the data size; copy @p src if given. */
static int take_data(const struct npy_layout *l, const void *src, size_t avail,
		     struct dj_tensor *t, char *err, size_t errlen)
{
	int64_t n = dj_tensor_numel(&l->desc);
	size_t need = (size_t)n * l->src_elem, bytes = dj_tensor_nbytes(&l->desc);

	if (avail != need)
		return npy_fail(-DJ_ESHAPE, err, errlen,
				"data is %zu bytes, the shape needs %zu (%s)", avail, need,
				avail < need ? "truncated" : "trailing bytes");
	t->desc = l->desc;
	t->mem = DJ_MEM_HOST;
	t->data = malloc(bytes > 0 ? bytes : 1);
	if (t->data == NULL)
		return npy_fail(-ENOMEM, err, errlen, "cannot allocate %zu bytes", bytes);
	if (src != NULL && need != bytes)
		narrow_f64(src, t->data, n);
	else if (src != NULL)
		memcpy(t->data, src, bytes);
	return 0;
}

int dj_npy_load_buffer(const void *buf, size_t len, unsigned int flags, struct dj_tensor *t,
		       char *err, size_t errlen)
{
	struct npy_layout l;
	int rc = parse_layout(buf, len, flags, &l, err, errlen);

	return rc != 0 ? rc : take_data(&l, (const char *)buf + l.offset, len - l.offset, t, err,
					errlen);
}

static int read_exact(int fd, void *buf, size_t len, off_t at)
{
	char *p = buf;

	while (len > 0) {
		ssize_t n = pread(fd, p, len, at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -EIO : -errno;
		p += n;
		at += n;
		len -= (size_t)n;
	}
	return 0;
}

/* float64 data goes through a temporary buffer to be narrowed. */
static int read_data(int fd, const struct npy_layout *l, struct dj_tensor *t)
{
	size_t bytes = dj_tensor_nbytes(&l->desc);
	int64_t n = dj_tensor_numel(&l->desc);

	if (l->src_elem == dj_dtype_size(l->desc.dtype))
		return read_exact(fd, t->data, bytes, (off_t)l->offset);
	void *wide = malloc((size_t)n * l->src_elem + 1);

	if (wide == NULL)
		return -ENOMEM;
	int rc = read_exact(fd, wide, (size_t)n * l->src_elem, (off_t)l->offset);

	if (rc == 0)
		narrow_f64(wide, t->data, n);
	free(wide);
	return rc;
}

/* Header first (small), then the data straight into the tensor's buffer. */
static int load_fd(int fd, unsigned int flags, struct dj_tensor *t, char *err, size_t errlen)
{
	unsigned char prefix[PREFIX_V2];
	struct stat st;
	size_t plen, total;
	struct npy_layout l;

	if (fstat(fd, &st) != 0)
		return -errno;
	size_t fsize = (size_t)st.st_size;
	int rc = read_exact(fd, prefix, fsize < sizeof(prefix) ? fsize : sizeof(prefix), 0);

	if (rc == 0)
		rc = parse_prefix(prefix, fsize < sizeof(prefix) ? fsize : sizeof(prefix), &plen,
				  &total, err, errlen);
	if (rc != 0)
		return rc;
	if (total > fsize)
		return npy_fail(-EINVAL, err, errlen, "truncated header");
	char *header = malloc(total);

	if (header == NULL)
		return -ENOMEM;
	rc = read_exact(fd, header, total, 0);
	if (rc == 0)
		rc = parse_layout(header, total, flags, &l, err, errlen);
	free(header);
	if (rc == 0)
		rc = take_data(&l, NULL, fsize - l.offset, t, err, errlen);
	if (rc == 0 && (rc = read_data(fd, &l, t)) != 0)
		dj_tensor_free_host(t);
	return rc;
}

int dj_npy_load(const char *path, unsigned int flags, struct dj_tensor *t, char *err,
		size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return npy_fail(-errno, err, errlen, "%s: %s", path, dj_strerror(-errno));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	int rc = load_fd(fd, flags, t, err, errlen);

	close(fd);
	if (rc != 0 && err != NULL && errlen > 0 && err[0] == '\0')
		npy_fail(rc, err, errlen, "%s: %s", path, dj_strerror(rc));
	return rc;
}
