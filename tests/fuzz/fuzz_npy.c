/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: .npy files as a user hands them to `djinn run`. The input
 * is a flags byte (bit 0: DJ_NPY_U2_AS_BF16, bit 1: DJ_NPY_F64_TO_F32) and a
 * file image, read by dj_npy_parse_header() and dj_npy_load_buffer(). What
 * loads must describe a valid tensor whose header, written back by
 * dj_npy_format_header(), parses to the same description; every failure must
 * come with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "djinn/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_npy: invariant broken: %s\n", what);
		abort();
	}
}

static void roundtrip(const struct dj_tensor_desc *d)
{
	char hdr[512];
	struct dj_tensor_desc again;
	size_t len, off;

	if (dj_npy_format_header(d, hdr, sizeof(hdr), &len) != 0)
		return; /* float64 is read, never written */
	check(len % 64 == 0, "written header not 64-byte aligned");
	check(dj_npy_parse_header(hdr, len, DJ_NPY_U2_AS_BF16, &again, &off, NULL, 0) == 0,
	      "written header does not parse");
	check(off == len && dj_tensor_desc_equal(d, &again), "header round trip changed the tensor");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dj_tensor_desc d;
	struct dj_tensor t = {0};
	unsigned flags;
	char err[256];
	size_t off;
	uint8_t *file;
	int rc, parsed;

	if (size < 1)
		return 0;
	flags = data[0] & (DJ_NPY_U2_AS_BF16 | DJ_NPY_F64_TO_F32);
	size--;
	/* Exactly the file's bytes: a read past them is an ASan report. */
	file = malloc(size ? size : 1);
	if (file == NULL)
		return 0;
	memcpy(file, data + 1, size);

	err[0] = '\0';
	rc = parsed = dj_npy_parse_header(file, size, flags, &d, &off, err, sizeof(err));
	if (rc == 0) {
		check(dj_tensor_desc_check(&d) == 0, "parsed an invalid description");
		check(off <= size, "data offset beyond the file");
		roundtrip(&d);
	} else {
		check(rc < 0 && err[0] != '\0', "parse failure without a message");
	}

	err[0] = '\0';
	rc = dj_npy_load_buffer(file, size, flags, &t, err, sizeof(err));
	if (rc == 0) {
		check(dj_tensor_desc_check(&t.desc) == 0 && t.data != NULL, "loaded an invalid tensor");
		/* Without conversion the data is the rest of the file, exactly;
		 * a file only the load reads is float64 turned into float32. */
		if (parsed == 0)
			check(dj_tensor_desc_equal(&d, &t.desc) &&
			      off + dj_tensor_nbytes(&t.desc) == size,
			      "tensor size and file disagree");
		else
			check((flags & DJ_NPY_F64_TO_F32) && t.desc.dtype == DJ_DTYPE_FLOAT32,
			      "load accepted what the header parse refused");
		dj_tensor_free_host(&t);
	} else {
		check(rc < 0 && err[0] != '\0', "load failure without a message");
	}
	free(file);
	return 0;
}
