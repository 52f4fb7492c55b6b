/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_APP_GRAPH_CMD_H
#define DJINN_APP_GRAPH_CMD_H

/* `djinn graph ...` (graph.c): argv[0] is "graph". Returns the exit status. */
int djinn_graph_main(int argc, char **argv);

#endif
