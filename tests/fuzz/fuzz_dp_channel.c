/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * libFuzzer target: a data-plane channel's whole input path. Fuzzed frames
 * (dp_fuzz.h gives the input layout) go through the encapsulation parse and
 * dp_channel_input() of a channel with receives and a send in progress, so
 * header checks, CRC, transfer validation, placement (host copy, streaming
 * copy or the GPU callback), ACK/NACK handling, timers and events all run.
 * AddressSanitizer watches the receive buffers (exactly their posted size)
 * and every frame (exactly its length); dp_fuzz.c aborts on a transfer
 * reported twice or a placement outside its receive.
 */
#include <stddef.h>
#include <stdint.h>

#include "djinn/common.h"
#include "dp_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_dp f;
	size_t off = 1;

	if (size < 1)
		return 0;
	dj_log_set_level(DJ_LOG_ERR);
	if (fz_dp_open(&f, data[0]) != 0) {
		fz_dp_close(&f);
		return 0;
	}
	while (off + 3 <= size) {
		unsigned dt = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];

		off += 3;
		if (len > size - off)
			len = size - off;
		fz_dp_record(&f, dt, data + off, len, NULL, NULL);
		off += len;
	}
	fz_dp_close(&f);
	return 0;
}
