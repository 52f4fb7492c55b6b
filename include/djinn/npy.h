/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_NPY_H
#define DJINN_NPY_H

/**
 * @file
 * numpy's .npy format (versions 1.0, 2.0 and 3.0), so users bring real data.
 *
 * Read: little-endian '<f4' (float32), '<f2' (float16), '<i4' (int32),
 * '<i8' (int64), C order only, up to DJ_MAX_DIMS dimensions. The header dict
 * is parsed strictly: exactly the keys 'descr', 'fortran_order' and 'shape',
 * Python literal syntax, data size exactly as the shape says.
 * Refused with a message naming the problem: other dtypes (float64 '<f8'
 * unless DJ_NPY_F64_TO_F32 is given), big-endian data, fortran_order True,
 * truncated or oversized files, malformed headers.
 *
 * bfloat16: numpy has no such dtype. Djinn writes bfloat16 tensors as '<u2'
 * holding the raw bits (in numpy: (a.astype(np.uint32) << 16).view(np.float32)
 * gives float32 values) and reads '<u2' back as bfloat16 only when asked with
 * DJ_NPY_U2_AS_BF16; without the flag a '<u2' file is refused.
 *
 * Return values: 0; -EINVAL (malformed), -DJ_EDTYPE (unsupported dtype),
 * -DJ_ESHAPE (bad shape or size), -ENOMEM, or -errno from file I/O; with a
 * message in @p err (may be NULL) for every failure.
 */

#include <stddef.h>

#include "djinn/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Read '<u2' data as bfloat16 bits. */
#define DJ_NPY_U2_AS_BF16 (1u << 0)
/** dj_npy_load*(): read '<f8' (numpy's default float64) as float32, rounded
 *  to nearest even. dj_npy_parse_header() ignores it (it describes the
 *  bytes as they are in the file). */
#define DJ_NPY_F64_TO_F32 (1u << 1)

/** Largest header accepted on read (numpy writes a few hundred bytes). */
#define DJ_NPY_MAX_HEADER (1u << 20)

/**
 * Parse the magic, version and header dict at the start of @p buf.
 * @p desc receives the tensor description, @p data_offset where the data
 * starts. @p len may cover only the header (the data is not checked here).
 */
int dj_npy_parse_header(const void *buf, size_t len, unsigned int flags,
			struct dj_tensor_desc *desc, size_t *data_offset,
			char *err, size_t errlen);

/**
 * Write the header for @p desc into @p buf: version 1.0 (the dict of at
 * most 8 dimensions always fits its 16-bit length), padded with spaces so the
 * data starts on a 64-byte boundary, as numpy writes it. @p len receives its size. -ENOSPC if @p cap is short.
 */
int dj_npy_format_header(const struct dj_tensor_desc *desc, char *buf, size_t cap,
			 size_t *len);

/**
 * Load an .npy file into a new host tensor: @p t->data is allocated here
 * and owned by the caller (release with dj_tensor_free_host()).
 */
int dj_npy_load(const char *path, unsigned int flags, struct dj_tensor *t,
		char *err, size_t errlen);
/** Same from a complete file image in memory (the data is copied). */
int dj_npy_load_buffer(const void *buf, size_t len, unsigned int flags, struct dj_tensor *t,
		       char *err, size_t errlen);

/** Save a host tensor as an .npy file (replaced if it exists). */
int dj_npy_save(const char *path, const struct dj_tensor *t, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif /* DJINN_NPY_H */
