/* unplug: the command-line tool (subcommands arrive with the engine). */
#include <stdio.h>
#include "unplug.h"
int main(void) { printf("unplug %s\n", UP_VERSION); return 0; }
