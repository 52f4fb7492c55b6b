/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_OP_FUZZ_H
#define DJINN_OP_FUZZ_H

/*
 * Input layout of fuzz_op_attrs, shared by the target and the seed generator:
 *   op (u8, index into the operation table modulo its size) | n_in (u8)
 *   n_in x { dtype (u8) | ndim (u8) | min(ndim, DJ_MAX_DIMS) dimensions }
 *   attrs: the rest, JSON text (empty: no attributes)
 * A dimension is one byte below FZ_OP_BIG, else FZ_OP_BIG followed by 8
 * bytes (int64, big endian) so huge and negative sizes are reachable.
 * dtype and ndim are taken raw: out-of-range values must be refused.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "djinn/tensor.h"

#define FZ_OP_BIG 0xffu

/* Append desc to buf at *off (cap bytes); 0, or -1 when it does not fit. */
static inline int fz_op_put_desc(uint8_t *buf, size_t cap, size_t *off,
				 const struct dj_tensor_desc *d)
{
	if (*off + 2 > cap)
		return -1;
	buf[(*off)++] = (uint8_t)d->dtype;
	buf[(*off)++] = (uint8_t)d->ndim;
	for (int i = 0; i < d->ndim && i < DJ_MAX_DIMS; i++) {
		uint64_t v = (uint64_t)d->shape[i];

		if (v < FZ_OP_BIG) {
			if (*off + 1 > cap)
				return -1;
			buf[(*off)++] = (uint8_t)v;
			continue;
		}
		if (*off + 9 > cap)
			return -1;
		buf[(*off)++] = FZ_OP_BIG;
		for (int b = 7; b >= 0; b--)
			buf[(*off)++] = (uint8_t)(v >> (8 * b));
	}
	return 0;
}

/* Read one desc from data at *off; 0, or -1 when the input ends first. */
static inline int fz_op_get_desc(const uint8_t *data, size_t size, size_t *off,
				 struct dj_tensor_desc *d)
{
	memset(d, 0, sizeof(*d));
	if (*off + 2 > size)
		return -1;
	d->dtype = (enum dj_dtype)data[(*off)++];
	d->ndim = data[(*off)++];
	for (int i = 0; i < d->ndim && i < DJ_MAX_DIMS; i++) {
		uint64_t v = 0;

		if (*off >= size)
			return -1;
		if (data[*off] != FZ_OP_BIG) {
			d->shape[i] = data[(*off)++];
			continue;
		}
		if (*off + 9 > size)
			return -1;
		for (int b = 1; b <= 8; b++)
			v = v << 8 | data[*off + (size_t)b];
		*off += 9;
		d->shape[i] = (int64_t)v;
	}
	return 0;
}

#endif
