/*
 * cli.h: subcommands that live in their own files (each parses its own
 * options: argc/argv after the command name). Return the exit code:
 * 0 success, 1 failure, 2 usage error.
 */
#ifndef UP_CLI_H
#define UP_CLI_H

/* "unplug: WHAT: the library's last message" on stderr; returns 1 */
int die(const char *what);

int cmd_serve(int argc, char **argv);     /* tools/serve.c */
int cmd_classify(int argc, char **argv);  /* tools/serve.c */
int cmd_router(int argc, char **argv);    /* tools/serve.c */
int cmd_report(int argc, char **argv);    /* tools/report.c */

#endif
