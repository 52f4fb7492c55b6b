/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_TOOL_TOP_H
#define DJINN_TOOL_TOP_H

/*
 * djinn top: a live view of servers (prefix top_) from their STATS.
 */
#include "djinn/djinn.h"

/** Servers one view shows: the connected one and up to 15 named. */
#define TOP_MAX_SERVERS 16

struct top_options {
	double interval_s;   /**< refresh period (default 1 s) */
	int once;            /**< print one frame (after one interval) and exit */
};

/**
 * Show conn's server, then each "HOST:PORT" of argv (connected with opts),
 * refreshed every interval, until q, Ctrl-C or SIGTERM; the terminal is put
 * back as it was. Without a terminal on stdin and stdout, frames are
 * printed one after the other, without escape sequences.
 * @return the tool's exit status (0, or 1 where a server cannot be reached).
 */
int top_main(struct dj_conn *conn, const struct dj_client_options *opts,
	     const struct top_options *top, int argc, char **argv);

#endif
