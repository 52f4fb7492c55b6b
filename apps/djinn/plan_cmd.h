/* SPDX-License-Identifier: BSD-3-Clause */
#ifndef DJINN_APP_PLAN_CMD_H
#define DJINN_APP_PLAN_CMD_H

/* `djinn plan ...` (plan.c): argv[0] is "plan". Returns the exit status. */
int djinn_plan_main(int argc, char **argv);

#endif
