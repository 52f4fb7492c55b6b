/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_APP_FLEET_CMD_H
#define DJINN_APP_FLEET_CMD_H

/* `djinn fleet ...` (apps/djinn/fleet.c): argv[0] is "fleet". */
int djinn_fleet_main(int argc, char **argv);

#endif
