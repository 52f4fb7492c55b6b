/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_CTL_FUZZ_H
#define DJINN_CTL_FUZZ_H

/*
 * The client side of the control-plane fuzz targets, shared by fuzz_ctl_client
 * (which answers it with fuzzed bytes) and the seed generator (which records
 * what a real server answers, and what the client sent, as seeds for
 * fuzz_ctl_client and fuzz_ctl_server).
 */
#include <stdint.h>

#include "djinn/djinn.h"

/* Options for a client of 127.0.0.1:port that never retries or waits long. */
void fz_client_options(struct dj_client_options *o, uint16_t port);
/* One session that uses every request the client library makes (HELLO,
 * AUTH when token, SESSION, PATH, PING, PUT, ALLOC, PUT into, DESCRIBE,
 * EXECUTE with and without attrs, an asynchronous EXECUTE of two outputs,
 * a batch, GET, STATS, FREE, BYE) and reads every reply. */
void fz_client_script(struct dj_client *cl);

#endif
